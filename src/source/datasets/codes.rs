//! Code tables of the fact sheet §10, decoded into `*_name` label columns.
//! Unknown codes are data, not errors: their label is null.

/// §10.1 charge_mode / charging_mode.
pub const CHARGE_MODES: &[(&str, &str)] = &[
    ("1", "yearly/monthly"),
    ("3", "pay-per-use"),
    ("10", "reserved instance"),
    ("11", "savings plan"),
];

/// §10.2 bill_type of resource-level and transaction records.
pub const BILL_TYPES: &[(&str, &str)] = &[
    ("1", "consumption - new purchase"),
    ("2", "consumption - renewal"),
    ("3", "consumption - change"),
    ("4", "refund - unsubscription"),
    ("5", "consumption - usage"),
    ("8", "consumption - auto-renewal"),
    ("9", "adjustment - compensation"),
    ("12", "consumption - hourly billing"),
    ("13", "consumption - unsubscription fee"),
    ("14", "consumption - support plan month-end deduction"),
    ("15", "consumption - tax"),
    ("16", "adjustment - deduction"),
    ("17", "consumption - minimum commitment shortfall"),
    ("18", "consumption - monthly payment"),
    ("20", "refund - change"),
    ("23", "consumption - savings plan deduction"),
    ("24", "refund - yearly/monthly to pay-per-use"),
    ("25", "consumption - rounding top-up"),
    ("100", "refund - unsubscription tax"),
    ("101", "adjustment - compensation tax"),
    ("102", "adjustment - deduction tax"),
    ("103", "consumption - yearly payment"),
];

/// §2: the bill summary's own bill_type table.
pub const SUMMARY_BILL_TYPES: &[(&str, &str)] = &[("1", "consumption"), ("2", "refund"), ("3", "adjustment")];

/// §10.3 period_type.
pub const PERIOD_TYPES: &[(&str, &str)] = &[
    ("19", "year"),
    ("20", "month"),
    ("24", "day"),
    ("25", "hour"),
    ("5", "one-time"),
];

/// §10.5 trade_type of income/expense records.
pub const TRADE_TYPES: &[(&str, &str)] = &[
    ("RECHARGE", "top-up"),
    ("DEDEUCT", "consumption"),
    ("REFUND", "refund"),
    ("RFROZEN", "freeze"),
    ("TRANS", "transfer"),
    ("ADJUST", "adjustment/write-off"),
    ("BEADJUST", "allocation by reseller/enterprise master"),
    ("BERETRIEVE", "retrieval by reseller/enterprise master"),
    ("BEUNBIND", "retrieval on unbinding"),
    ("EXPIRED", "expiry clearing"),
    ("BONUSCONVERT", "bonus conversion"),
    ("TRADE_MODE_TRANSFER", "trade mode change"),
    ("DEPOSIT", "security deposit"),
];

/// §10.6 payment_channel_id.
pub const PAYMENT_CHANNELS: &[(&str, &str)] = &[
    ("0", "none"),
    ("1", "Alipay"),
    ("2", "bank transfer"),
    ("4", "Alipay/online banking"),
    ("5", "WeChat Pay"),
    ("6", "withdrawal"),
    ("7", "incentive rebate"),
    ("10", "trade mode change"),
    ("11", "adjustment"),
    ("317", "UnionPay"),
    ("319", "Huawei Pay"),
    ("320", "Huawei Pay (CN)"),
];

/// §10.8 provider_type.
pub const PROVIDER_TYPES: &[(&str, &str)] = &[("1", "Huawei Cloud"), ("2", "KooGallery")];

/// §10.8 fee-record status.
pub const FEE_STATUSES: &[(&str, &str)] = &[("1", "paid"), ("2", "unsettled"), ("3", "not billed")];

/// §10.8 member account status.
pub const MEMBER_STATUSES: &[(&str, &str)] = &[
    ("1", "normal"),
    ("2", "creating"),
    ("3", "closing"),
    ("4", "closed"),
    ("101", "registering"),
    ("102", "pending activation"),
];
