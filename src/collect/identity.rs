//! Group `identity`: `ecs_task_identity_info`, the labels OpenTelemetry's and CloudWatch's ECS
//! receivers attach to every series and users otherwise rebuild with relabelling: the account,
//! region and task id (from the task ARN), the service, the group, the VPC and the Availability
//! Zone ID. Go's `ecs_task_metadata_info` stays as it is.

use super::{Metric, Switch, push};
use crate::exposition::Sample;
use crate::model::TaskMetadata;

pub(super) const SWITCH: Switch = Switch {
    name: "identity",
    default: true,
    help: "Task identity: account, region, task id, service, group, VPC.",
};

pub(super) fn collect<'a>(task: &'a TaskMetadata, out: &mut Vec<Sample<'a>>) {
    let s = |field: &'a Option<String>| field.as_deref().unwrap_or("");
    let arn = Arn::parse(s(&task.task_arn));
    let labels = [
        arn.account,
        s(&task.availability_zone_id),
        s(&task.group),
        arn.region,
        s(&task.service_name),
        s(&task.task_arn),
        arn.id,
        s(&task.vpc_id),
    ];
    push(out, Metric::TaskIdentity, &labels, 1.0);
}

/// The parts of a task ARN, `arn:PARTITION:ecs:REGION:ACCOUNT:task/[CLUSTER/]ID`; empty where
/// the ARN has none.
#[derive(Debug, Default, PartialEq, Eq)]
struct Arn<'a> {
    region: &'a str,
    account: &'a str,
    id: &'a str,
}

impl<'a> Arn<'a> {
    fn parse(arn: &'a str) -> Arn<'a> {
        let mut parts = arn.splitn(6, ':');
        let (Some("arn"), Some(_partition), Some(_service), Some(region), Some(account)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Arn::default();
        };
        let resource = parts.next().unwrap_or("");
        let id = match resource.split_once('/') {
            Some((_, path)) => path.rsplit('/').next().unwrap_or(""),
            None => "",
        };
        Arn {
            region,
            account,
            id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_arns_old_and_new_and_not_arns() {
        let rows = [
            (
                "arn:aws:ecs:eu-west-1:123456789012:task/shop-prod/4f2c1e0a9b8d4c7e",
                ("eu-west-1", "123456789012", "4f2c1e0a9b8d4c7e"),
            ),
            (
                "arn:aws-cn:ecs:cn-north-1:123456789012:task/0d5a3c9e-1111-2222",
                ("cn-north-1", "123456789012", "0d5a3c9e-1111-2222"),
            ),
            ("arn:aws:ecs:us-east-1:1:task", ("us-east-1", "1", "")),
            ("not an arn", ("", "", "")),
            ("arn:aws:ecs:only-region", ("", "", "")),
            ("", ("", "", "")),
        ];
        for (arn, (region, account, id)) in rows {
            assert_eq!(
                Arn::parse(arn),
                Arn {
                    region,
                    account,
                    id
                },
                "{arn}"
            );
        }
    }
}
