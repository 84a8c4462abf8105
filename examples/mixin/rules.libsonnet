// Recording rules for what every user writes by hand, named level:metric:operation as the
// kubernetes-mixin names its own. Task and container records carry the task's identity
// (config.identityLabels) in both scopes, so the dashboard filters them by cluster, family and
// task directly; service records sum tasks by the service of ecs_task_identity_info's `group`.
local lib = import 'lib.libsonnet';

{
  local c = $._config,

  // The records of tasks and containers, as (name, PromQL over the exporter's series) for a
  // selector of those series and of the identity; the dashboard asks for the same PromQL where
  // a record is missing.
  taskRecords(selector, info):: [
    {
      record: r.record,
      expr: lib.identity(c { selector: selector }, r.expr % { sel: selector, task: lib.taskBy(c) }, info),
    }
    for r in [
      {
        // vCPUs used by each container.
        record: 'task_container:ecs_container_cpu_usage_seconds_total:rate5m',
        expr: 'rate(ecs_container_cpu_usage_seconds_total{%(sel)s}[5m])',
      },
      {
        // vCPUs used by each task.
        record: 'task:ecs_container_cpu_usage_seconds_total:sum_rate5m',
        expr: 'sum by (%(task)s) (rate(ecs_container_cpu_usage_seconds_total{%(sel)s}[5m]))',
      },
      {
        // Share of the task's CPU limit used (1 = all of it).
        record: 'task:ecs_container_cpu_usage_seconds_total:ratio_limit',
        expr: |||
          sum by (%(task)s) (rate(ecs_container_cpu_usage_seconds_total{%(sel)s}[5m]))
            / on (%(task)s) ecs_task_cpu_limit_vcpus{%(sel)s}
        |||,
      },
      {
        // Share of the CPU the task definition reserves for the container (a weight, not a cap).
        record: 'task_container:ecs_container_cpu_usage_seconds_total:ratio_reservation',
        expr: |||
          rate(ecs_container_cpu_usage_seconds_total{%(sel)s}[5m])
            / ecs_container_cpu_reserved_vcpus{%(sel)s}
        |||,
      },
      {
        // Share of the limit the kernel enforces on the container (1 = OOM kill).
        record: 'task_container:ecs_container_memory_working_set_bytes:ratio_limit',
        expr: |||
          ecs_container_memory_working_set_bytes{%(sel)s}
            / ecs_container_memory_enforced_limit_bytes{%(sel)s}
        |||,
      },
      {
        // Working set of each task.
        record: 'task:ecs_container_memory_working_set_bytes:sum',
        expr: 'sum by (%(task)s) (ecs_container_memory_working_set_bytes{%(sel)s})',
      },
      {
        // Bytes per second received by each task, all interfaces.
        record: 'task:ecs_network_receive_bytes_total:sum_rate5m',
        expr: 'sum by (%(task)s) (rate(ecs_network_receive_bytes_total{%(sel)s}[5m]))',
      },
      {
        // Bytes per second sent by each task, all interfaces.
        record: 'task:ecs_network_transmit_bytes_total:sum_rate5m',
        expr: 'sum by (%(task)s) (rate(ecs_network_transmit_bytes_total{%(sel)s}[5m]))',
      },
    ]
  ],

  // A task record summed by cluster and service (`group` is `service:NAME` for a service's
  // tasks on every launch type; ServiceName is not sent on Fargate).
  local byService(record) = {
    record: std.strReplace(record, 'task:', 'service:'),
    expr: |||
      sum by (cluster, service) (
        %(record)s{%(sel)s}
        * on (%(task)s) group_left (service)
          label_replace(ecs_task_identity_info{%(sel)s}, "service", "$1", "group", "service:(.+)")
      )
    ||| % { record: record, sel: c.selector, task: lib.taskBy(c) },
  },

  prometheusRules+:: {
    groups+: [{
      name: 'ecs-exporter.rules',
      rules: $.taskRecords(c.selector, c.selector) + [
        byService('task:ecs_container_cpu_usage_seconds_total:sum_rate5m'),
        byService('task:ecs_container_memory_working_set_bytes:sum'),
        byService('task:ecs_network_receive_bytes_total:sum_rate5m'),
        byService('task:ecs_network_transmit_bytes_total:sum_rate5m'),
      ],
    }],
  },
}
