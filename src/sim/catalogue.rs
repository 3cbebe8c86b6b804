//! What the simulated ledger is made of: services with their usage types and
//! whole-machine parts, regions, projects, and the mix of charges. Every code
//! here is one the SDK models document (huaweicloudsdkbss 3.1.219): all fifteen
//! bill types, the four charging modes and the five period types appear, so
//! the extractors meet every documented shape, not just the convenient ones.

/// One usage type metered on a resource (`usage_type`, its unit after the
/// currency, e.g. `/hour` → `CNY/hour`, and its usage measure id).
#[derive(Debug)]
pub struct Usage {
    pub code: &'static str,
    pub unit: &'static str,
    pub measure: i64,
}

/// A sub-service of a whole machine, billed under the main resource with its
/// own `sub_*` ids ("整机的子云服务的自身的资源ID").
#[derive(Debug)]
pub struct Part {
    pub service_code: &'static str,
    pub service_name: &'static str,
    pub rtype: &'static str,
    pub rname: &'static str,
    pub name: &'static str,
    pub usage: Usage,
}

#[derive(Debug)]
pub struct Service {
    pub code: &'static str,
    pub name: &'static str,
    pub rtype: &'static str,
    pub rname: &'static str,
    /// The usage types of one resource; a trade's lines take them in turn, so
    /// a resource has several usage types in one month.
    pub usages: &'static [Usage],
    /// Parts of a whole machine: a trade's lines after the first are parts.
    pub parts: &'static [Part],
    pub spec: &'static str,
    pub resource_prefix: &'static str,
}

const DURATION: Usage = Usage {
    code: "duration",
    unit: "/hour",
    measure: 4,
};

pub const SERVICES: &[Service] = &[
    Service {
        code: "hws.service.type.ec2",
        name: "Elastic Cloud Server",
        rtype: "hws.resource.type.vm",
        rname: "ECS",
        usages: &[DURATION],
        parts: &[
            Part {
                service_code: "hws.service.type.ebs",
                service_name: "Elastic Volume Service",
                rtype: "hws.resource.type.volume",
                rname: "EVS",
                name: "system disk",
                usage: Usage {
                    code: "capacity",
                    unit: "/GB/hour",
                    measure: 17,
                },
            },
            Part {
                service_code: "hws.service.type.vpc",
                service_name: "Virtual Private Cloud",
                rtype: "hws.resource.type.bandwidth",
                rname: "Bandwidth",
                name: "bandwidth",
                usage: Usage {
                    code: "upflow",
                    unit: "/GB",
                    measure: 10,
                },
            },
            Part {
                service_code: "hws.service.type.ebs",
                service_name: "Elastic Volume Service",
                rtype: "hws.resource.type.volume",
                rname: "EVS",
                name: "data disk",
                usage: Usage {
                    code: "capacity",
                    unit: "/GB/hour",
                    measure: 17,
                },
            },
        ],
        spec: "s6.large.2 | 2vCPUs | 4GiB | linux",
        resource_prefix: "ecs-生产",
    },
    Service {
        code: "hws.service.type.ebs",
        name: "Elastic Volume Service",
        rtype: "hws.resource.type.volume",
        rname: "EVS",
        usages: &[Usage {
            code: "capacity",
            unit: "/GB/hour",
            measure: 17,
        }],
        parts: &[],
        spec: "SSD | 100GB",
        resource_prefix: "数据盘",
    },
    Service {
        code: "hws.service.type.obs",
        name: "Object Storage Service",
        rtype: "hws.resource.type.obs",
        rname: "OBS",
        usages: &[
            Usage {
                code: "storage",
                unit: "/GB/month",
                measure: 10,
            },
            Usage {
                code: "requests",
                unit: "/10,000 requests",
                measure: 41,
            },
            Usage {
                code: "downflow",
                unit: "/GB",
                measure: 10,
            },
        ],
        parts: &[],
        spec: "Standard storage",
        resource_prefix: "bucket-日志",
    },
    Service {
        code: "hws.service.type.vpc",
        name: "Virtual Private Cloud",
        rtype: "hws.resource.type.bandwidth",
        rname: "Bandwidth",
        usages: &[
            Usage {
                code: "upflow",
                unit: "/GB",
                measure: 10,
            },
            DURATION,
        ],
        parts: &[],
        spec: "Dynamic BGP | 100Mbit/s",
        resource_prefix: "带宽 ☁ bw",
    },
    Service {
        code: "hws.service.type.rds",
        name: "Relational Database Service",
        rtype: "hws.resource.type.rds.vm",
        rname: "RDS instance",
        usages: &[DURATION],
        parts: &[Part {
            service_code: "hws.service.type.rds",
            service_name: "Relational Database Service",
            rtype: "hws.resource.type.rds.volume",
            rname: "RDS storage",
            name: "storage",
            usage: Usage {
                code: "capacity",
                unit: "/GB/hour",
                measure: 17,
            },
        }],
        spec: "rds.mysql.n1.large.2 | primary/standby",
        resource_prefix: "数据库 Ω primary",
    },
    Service {
        code: "hws.service.type.cdn",
        name: "Content Delivery Network",
        rtype: "hws.resource.type.cdn",
        rname: "CDN",
        usages: &[
            Usage {
                code: "95Peak",
                unit: "/Mbit/s/month",
                measure: 33,
            },
            Usage {
                code: "requests",
                unit: "/10,000 requests",
                measure: 41,
            },
        ],
        parts: &[],
        spec: "Mainland China | 95th percentile",
        resource_prefix: "cdn-加速-éé",
    },
];

pub const REGIONS: &[(&str, &str)] = &[
    ("cn-north-4", "CN North-Beijing4"),
    ("cn-east-3", "CN East-Shanghai1"),
    ("cn-south-1", "CN South-Guangzhou"),
    ("ap-southeast-1", "AP-Hong Kong"),
];

/// Enterprise projects: `0` the default one, `null` (None) what is not
/// collected into a project (未归集), as the models document.
pub const PROJECTS: &[(Option<&str>, &str)] = &[
    (Some("0"), "default"),
    (Some("3f2a9c1e-7b4d-4e0a-9d61-2c8e5b7a1f00"), "数据平台"),
    (Some("8c6d2e4f-1a3b-4c5d-8e7f-9a0b1c2d3e4f"), "web-shop"),
    (None, ""),
];

pub const MEMBER_NAMES: &[(&str, &str)] = &[
    ("finance-dept", "财务部"),
    ("rnd-team", "研发 Ω team"),
    ("marketing", "Marketing — 市场部"),
    ("ops-east", "运维 (east)"),
    ("data-lab", "データ lab"),
];

/// One kind of charge: charging mode (§10.1), bill type (§10.2), period type
/// (§10.3) and its share of trades in percent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Charge {
    pub charge_mode: i64,
    pub bill_type: i64,
    pub period_type: Option<i64>,
    pub percent: u64,
}

const fn charge(charge_mode: i64, bill_type: i64, period_type: Option<i64>, percent: u64) -> Charge {
    Charge {
        charge_mode,
        bill_type,
        period_type,
        percent,
    }
}

/// The mix of charges: on-demand use dominates as it does on real bills;
/// every documented bill type, charging mode and period type is present.
pub const CHARGES: &[Charge] = &[
    charge(3, 5, None, 44),      // on demand, usage
    charge(3, 5, Some(25), 6),   // on demand, hourly
    charge(1, 1, Some(20), 8),   // monthly purchase
    charge(1, 1, Some(19), 3),   // yearly purchase
    charge(1, 1, Some(5), 2),    // one-time purchase
    charge(1, 2, Some(20), 4),   // renewal
    charge(1, 8, Some(19), 3),   // auto-renewal, yearly
    charge(1, 3, Some(20), 2),   // change of spec
    charge(1, 4, Some(20), 3),   // refund on unsubscription
    charge(1, 20, Some(20), 1),  // refund on a change
    charge(1, 24, Some(20), 1),  // refund: prepaid converted to on demand
    charge(1, 18, Some(20), 2),  // monthly payment
    charge(1, 103, Some(19), 1), // yearly payment
    charge(10, 5, Some(25), 4),  // reserved instance, hourly
    charge(10, 1, Some(19), 1),  // reserved instance, paid up front
    charge(11, 23, Some(25), 4), // savings-plan deduction
    charge(3, 14, Some(20), 1),  // support plan, month-end deduction
    charge(3, 9, None, 3),       // compensation
    charge(3, 16, None, 2),      // adjustment: deduction
    charge(3, 25, None, 1),      // rounding top-up (抹零补扣)
    charge(1, 1, Some(24), 1),   // daily package
    charge(3, 5, Some(24), 3),   // on demand, daily settlement
];

/// The charge of a roll in `0..100`.
pub fn charge_of(roll: u64) -> Charge {
    let mut acc = 0;
    for c in CHARGES {
        acc += c.percent;
        if roll < acc {
            return *c;
        }
    }
    CHARGES[0]
}

/// Bill types whose trade id is an order id (§10.2, `trade_id`'s docstring).
pub fn is_order_bill_type(bill_type: i64) -> bool {
    matches!(bill_type, 1 | 2 | 3 | 4 | 8)
}

/// Bill types that give money back (refunds, compensation): negative amounts.
pub fn gives_back(bill_type: i64) -> bool {
    matches!(bill_type, 4 | 9 | 20 | 24)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_covers_every_documented_code_and_sums_to_a_hundred() {
        assert_eq!(CHARGES.iter().map(|c| c.percent).sum::<u64>(), 100);
        let mut bill: Vec<i64> = CHARGES.iter().map(|c| c.bill_type).collect();
        bill.sort();
        bill.dedup();
        assert_eq!(bill, [1, 2, 3, 4, 5, 8, 9, 14, 16, 18, 20, 23, 24, 25, 103]);
        let mut modes: Vec<i64> = CHARGES.iter().map(|c| c.charge_mode).collect();
        modes.sort();
        modes.dedup();
        assert_eq!(modes, [1, 3, 10, 11]);
        let mut periods: Vec<i64> = CHARGES.iter().filter_map(|c| c.period_type).collect();
        periods.sort();
        periods.dedup();
        assert_eq!(periods, [5, 19, 20, 24, 25]);
        assert_eq!(charge_of(0), CHARGES[0]);
        assert_eq!(charge_of(99), *CHARGES.last().unwrap());
    }
}
