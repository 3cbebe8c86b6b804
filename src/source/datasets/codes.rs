//! Code tables of the fact sheet §10, decoded into `*_name` label columns.
//! Unknown codes are data, not errors: their label is null.

/// §10.1 charge_mode / charging_mode.
pub const CHARGE_MODES: &[(i64, &str)] = &[
    (1, "yearly/monthly"),
    (3, "pay-per-use"),
    (10, "reserved instance"),
    (11, "savings plan"),
];

/// §10.2 bill_type of resource-level and transaction records.
pub const BILL_TYPES: &[(i64, &str)] = &[
    (1, "consumption - new purchase"),
    (2, "consumption - renewal"),
    (3, "consumption - change"),
    (4, "refund - unsubscription"),
    (5, "consumption - usage"),
    (8, "consumption - auto-renewal"),
    (9, "adjustment - compensation"),
    (12, "consumption - hourly billing"),
    (13, "consumption - unsubscription fee"),
    (14, "consumption - support plan month-end deduction"),
    (15, "consumption - tax"),
    (16, "adjustment - deduction"),
    (17, "consumption - minimum commitment shortfall"),
    (18, "consumption - monthly payment"),
    (20, "refund - change"),
    (23, "consumption - savings plan deduction"),
    (24, "refund - yearly/monthly to pay-per-use"),
    (25, "consumption - rounding top-up"),
    (100, "refund - unsubscription tax"),
    (101, "adjustment - compensation tax"),
    (102, "adjustment - deduction tax"),
    (103, "consumption - yearly payment"),
];

/// §2: the bill summary's own bill_type table.
pub const SUMMARY_BILL_TYPES: &[(i64, &str)] =
    &[(1, "consumption"), (2, "refund"), (3, "adjustment")];

/// §10.3 period_type.
pub const PERIOD_TYPES: &[(i64, &str)] = &[
    (19, "year"),
    (20, "month"),
    (24, "day"),
    (25, "hour"),
    (5, "one-time"),
];
