// promtool unit tests of every alert (rendered to tests.yaml by .ci/mixin.sh): for each alert,
// in task scope and in instance scope, a task A where the condition holds beside a task B
// where it does not; the alert is silent before its `for` has passed, then fires for A alone.
// In task scope each task is its own target; in instance scope both are on one target and
// only task_arn tells them apart. The recording rules are checked the same way.
local mixin = import 'mixin.libsonnet';
local c = mixin._config;

local cluster = 'arn:aws:ecs:eu-west-1:123456789012:cluster/shop-prod';
local ids = { A: '0a1b2c3d4e5f60718293a4b5c6d7e8f9', B: '9f8e7d6c5b4a39281706f5e4d3c2b1a0' };
local arn(task) = 'arn:aws:ecs:eu-west-1:123456789012:task/shop-prod/' + ids[task];

local taskInstances = { A: '10.0.1.17:9779', B: '10.0.1.18:9779' };
local scopes = {
  task: {
    job: 'ecs-task',
    instance(task): taskInstances[task],
    labels(task): { job: 'ecs-task', instance: taskInstances[task] },
  },
  instance: {
    job: 'ecs-exporter-instances',
    instance(task): 'i-0a1b2c3d4e5f60718',
    labels(task): { job: 'ecs-exporter-instances', instance: 'i-0a1b2c3d4e5f60718', task_arn: arn(task) },
  },
};

local selector(labels) =
  '{' + std.join(', ', ['%s="%s"' % [k, labels[k]] for k in std.objectFields(labels)]) + '}';

// A series of a task (task and container families: task_arn in instance scope).
local of(scope, task, name, labels, values) = {
  series: name + selector(scopes[scope].labels(task) + labels),
  values: values,
};
// A series of a target (ecs_up, up, the exporter's own): no task_arn in either scope, and in
// instance scope task A's and B's are two instances.
local target(scope, which) = {
  job: scopes[scope].job,
  instance: {
    task: scopes.task.instance(which),
    instance: { A: 'i-0a1b2c3d4e5f60718', B: 'i-0b2c3d4e5f6071829' }[which],
  }[scope],
};
local targetOf(scope, which, name, labels, values) = {
  series: name + selector(target(scope, which) + labels),
  values: values,
};
local info(scope, task, desired='RUNNING') = of(scope, task, 'ecs_task_metadata_info', {
  cluster: cluster,
  task_arn: arn(task),
  family: 'checkout',
  desired_status: desired,
  known_status: 'RUNNING',
}, '1x60');

// The labels an alert of task A carries (the identity taken from ecs_task_metadata_info).
local identity(scope) = scopes[scope].labels('A') + {
  task_arn: arn('A'),
  task_id: ids.A,
  family: 'checkout',
  cluster: cluster,
};
local annotations(name, description) = {
  local rule = [r for g in mixin.prometheusAlerts.groups for r in g.rules if r.alert == name][0],
  summary: rule.annotations.summary,
  description: description,
  runbook_url: 'https://github.com/ecs-exporter-rs/ecs_exporter/blob/main/docs/runbook.md#' + std.asciiLower(name),
};
local theTask = 'task %s (family checkout)' % ids.A;
local ofContainer(name) = 'Container %s of %s' % [name, theTask];

// One test group: the series, then the alert checked before and after its `for`.
local case(name, series, before, after, alerts) = {
  interval: '1m',
  input_series: series,
  alert_rule_test: [
    { eval_time: before, alertname: name, exp_alerts: [] },
    {
      eval_time: after,
      alertname: name,
      exp_alerts: [
        { exp_labels: a.labels + { severity: a.severity }, exp_annotations: annotations(name, a.description) }
        for a in alerts
      ],
    },
  ],
};

local alertCases(scope) = [
  case(
    'EcsMetadataUnreadable',
    [
      targetOf(scope, 'A', 'ecs_up', {}, '0x20'),
      targetOf(scope, 'B', 'ecs_up', {}, '1x20'),
    ],
    '4m', '10m',
    [{
      labels: target(scope, 'A'),
      severity: 'warning',
      description: 'The exporter at %(instance)s (job %(job)s) has not read the task metadata endpoint for 5m: the figures of its task (in instance scope, of every task of its instance) are missing or stale.' % self.labels,
    }],
  ),
  case(
    'EcsExporterDown',
    [
      targetOf(scope, 'A', 'up', {}, '0x20'),
      targetOf(scope, 'B', 'up', {}, '1x20'),
    ],
    '4m', '10m',
    [{
      labels: target(scope, 'A'),
      severity: 'warning',
      description: 'The target %(instance)s of job %(job)s has not answered a scrape for 5m: nothing is known of its task (in instance scope, of its instance).' % self.labels,
    }],
  ),
  case(
    'EcsExporterRejectingScrapes',
    [
      targetOf(scope, 'A', 'promhttp_metric_handler_requests_total', { code: '503' }, '0+10x30'),
      targetOf(scope, 'A', 'promhttp_metric_handler_requests_total', { code: '200' }, '0+60x30'),
      targetOf(scope, 'B', 'promhttp_metric_handler_requests_total', { code: '503' }, '3x30'),
      targetOf(scope, 'B', 'promhttp_metric_handler_requests_total', { code: '200' }, '0+60x30'),
    ],
    '10m', '20m',
    [{
      labels: target(scope, 'A') + { code: '503' },
      severity: 'warning',
      description: 'The exporter at %(instance)s (job %(job)s) has answered 0.17 metrics requests per second with 503 for 15m: more clients scrape it at once than --web.max-requests lets in.' % self.labels,
    }],
  ),
  case(
    'EcsContainerMemoryNearLimit',
    [
      info(scope, 'A'),
      info(scope, 'B'),
      of(scope, 'A', 'ecs_container_memory_working_set_bytes', { container_name: 'web' }, '950x30'),
      of(scope, 'A', 'ecs_container_memory_enforced_limit_bytes', { container_name: 'web' }, '1000x30'),
      // No enforced limit (none set): no ratio.
      of(scope, 'A', 'ecs_container_memory_working_set_bytes', { container_name: 'sidecar' }, '950x30'),
      of(scope, 'B', 'ecs_container_memory_working_set_bytes', { container_name: 'web' }, '500x30'),
      of(scope, 'B', 'ecs_container_memory_enforced_limit_bytes', { container_name: 'web' }, '1000x30'),
    ],
    '10m', '20m',
    [{
      labels: identity(scope) + { container_name: 'web' },
      severity: 'warning',
      description: ofContainer('web') + ' has a working set of 95% of the memory limit the kernel enforces: at 100% it is OOM-killed. The working set leaves out the page cache the kernel can drop (usage, and on cgroup v2 the page cache, would overstate it).',
    }],
  ),
  case(
    'EcsContainerMemoryPressure',
    [
      info(scope, 'A'),
      info(scope, 'B'),
      // A: near the limit and reclaiming (cgroup v2), or hitting the limit (cgroup v1).
      of(scope, 'A', 'ecs_container_memory_working_set_bytes', { container_name: 'web' }, '850x40'),
      of(scope, 'A', 'ecs_container_memory_enforced_limit_bytes', { container_name: 'web' }, '1000x40'),
      of(scope, 'A', 'ecs_container_memory_pages_reclaimed_total', { container_name: 'web' }, '0+100x40'),
      of(scope, 'A', 'ecs_container_memory_working_set_bytes', { container_name: 'worker' }, '850x40'),
      of(scope, 'A', 'ecs_container_memory_enforced_limit_bytes', { container_name: 'worker' }, '1000x40'),
      of(scope, 'A', 'ecs_container_memory_limit_failures_total', { container_name: 'worker' }, '0+5x40'),
      // B: reclaiming page cache with a small working set; a large working set, no reclaim.
      of(scope, 'B', 'ecs_container_memory_working_set_bytes', { container_name: 'web' }, '500x40'),
      of(scope, 'B', 'ecs_container_memory_enforced_limit_bytes', { container_name: 'web' }, '1000x40'),
      of(scope, 'B', 'ecs_container_memory_pages_reclaimed_total', { container_name: 'web' }, '0+100x40'),
      of(scope, 'B', 'ecs_container_memory_working_set_bytes', { container_name: 'worker' }, '850x40'),
      of(scope, 'B', 'ecs_container_memory_enforced_limit_bytes', { container_name: 'worker' }, '1000x40'),
      of(scope, 'B', 'ecs_container_memory_limit_failures_total', { container_name: 'worker' }, '7x40'),
    ],
    '10m', '20m',
    [
      {
        labels: identity(scope) + { container_name: container },
        severity: 'warning',
        description: ofContainer(container) + ' has a working set of 85% of its memory limit and the kernel keeps hitting the limit (cgroup v1) or reclaiming pages (cgroup v2) to stay under it. Limit hits and reclaim alone are normal for a container that reads files (the page cache fills up to the limit); with the working set this high they mean memory is running out.',
      }
      for container in ['web', 'worker']
    ],
  ),
  case(
    'EcsTaskCpuNearLimit',
    [
      info(scope, 'A'),
      info(scope, 'B'),
      of(scope, 'A', 'ecs_container_cpu_usage_seconds_total', { container_name: 'web' }, '0+45x40'),
      of(scope, 'A', 'ecs_container_cpu_usage_seconds_total', { container_name: 'worker' }, '0+12x40'),
      of(scope, 'A', 'ecs_task_cpu_limit_vcpus', {}, '1x40'),
      of(scope, 'B', 'ecs_container_cpu_usage_seconds_total', { container_name: 'web' }, '0+30x40'),
      of(scope, 'B', 'ecs_task_cpu_limit_vcpus', {}, '1x40'),
    ],
    '10m', '20m',
    [{
      labels: identity(scope),
      severity: 'warning',
      description: 'Task %s (family checkout) has used 95%% of its CPU limit for 15m, so the kernel throttles it. ECS reports CPU throttling as 0 even then (amazon-ecs-agent issue 4473), so this is the only sign of it.' % ids.A,
    }],
  ),
  case(
    'EcsContainerCpuNearReservation',
    [
      info(scope, 'A'),
      info(scope, 'B'),
      of(scope, 'A', 'ecs_container_cpu_usage_seconds_total', { container_name: 'web' }, '0+30x60'),
      of(scope, 'A', 'ecs_container_cpu_reserved_vcpus', { container_name: 'web' }, '0.25x60'),
      of(scope, 'B', 'ecs_container_cpu_usage_seconds_total', { container_name: 'web' }, '0+6x60'),
      of(scope, 'B', 'ecs_container_cpu_reserved_vcpus', { container_name: 'web' }, '0.25x60'),
    ],
    '25m', '40m',
    [{
      labels: identity(scope) + { container_name: 'web' },
      severity: 'info',
      description: ofContainer('web') + ' has used 200% of the CPU its task definition reserves for 30m. The reservation is a share, not a cap: the container may use more while the CPU is free, and is held to its share when its neighbours want theirs.',
    }],
  ),
  case(
    'EcsContainerRestarting',
    [
      info(scope, 'A'),
      info(scope, 'B'),
      of(scope, 'A', 'ecs_container_restarts_total', { container_name: 'web' }, '0+1x40'),
      of(scope, 'B', 'ecs_container_restarts_total', { container_name: 'web' }, '2x40'),
    ],
    '10m', '20m',
    [{
      labels: identity(scope) + { container_name: 'web' },
      severity: 'warning',
      description: ofContainer('web') + ' has restarted at least once every 10 minutes for 15m: it keeps exiting, and its restart policy keeps starting it again.',
    }],
  ),
  case(
    'EcsContainerUnhealthy',
    [
      info(scope, 'A'),
      info(scope, 'B'),
      of(scope, 'A', 'ecs_container_health_status', { container_name: 'worker', status: 'UNHEALTHY' }, '1x20'),
      of(scope, 'B', 'ecs_container_health_status', { container_name: 'worker', status: 'HEALTHY' }, '1x20'),
    ],
    '4m', '6m',
    [{
      labels: identity(scope) + { container_name: 'worker', status: 'UNHEALTHY' },
      severity: 'warning',
      description: ofContainer('worker') + ' has been UNHEALTHY for 5m.',
    }],
  ),
  case(
    'EcsContainerExitedNonZero',
    [
      info(scope, 'A'),
      info(scope, 'B', 'STOPPED'),
      of(scope, 'A', 'ecs_container_exit_code', { container_name: 'migrate' }, '1x20'),
      of(scope, 'A', 'ecs_container_exit_code', { container_name: 'init' }, '0x20'),
      // B is stopping: its containers are killed (137) on the way down.
      of(scope, 'B', 'ecs_container_exit_code', { container_name: 'migrate' }, '137x20'),
    ],
    '4m', '6m',
    [{
      labels: identity(scope) + { container_name: 'migrate' },
      severity: 'warning',
      description: ofContainer('migrate') + ' exited with code 1 and its task goes on running without it.',
    }],
  ),
  case(
    'EcsTaskClockNotSynchronized',
    [
      info(scope, 'A'),
      info(scope, 'B'),
      of(scope, 'A', 'ecs_task_clock_synchronized', {}, '0x20'),
      of(scope, 'B', 'ecs_task_clock_synchronized', {}, '1x20'),
    ],
    '4m', '6m',
    [{
      labels: identity(scope),
      severity: 'warning',
      description: 'The clock of task %s (family checkout) has not been synchronized with the Amazon Time Sync Service for 5m: AWS refuses requests signed with a clock more than 5 minutes off, and logs come out of order.' % ids.A,
    }],
  ),
  case(
    'EcsTaskClockErrorLarge',
    [
      info(scope, 'A'),
      info(scope, 'B'),
      of(scope, 'A', 'ecs_task_clock_error_bound_seconds', {}, '0.25x20'),
      of(scope, 'B', 'ecs_task_clock_error_bound_seconds', {}, '0.0005x20'),
    ],
    '4m', '6m',
    [{
      labels: identity(scope),
      severity: 'warning',
      description: 'The clock of task %s (family checkout) may be 250ms from UTC (its error bound), more than 0.1s for 5m.' % ids.A,
    }],
  ),
  case(
    'EcsTaskEphemeralStorageNearFull',
    [
      info(scope, 'A'),
      info(scope, 'B'),
      of(scope, 'A', 'ecs_task_ephemeral_storage_used_bytes', {}, '19x30'),
      of(scope, 'A', 'ecs_task_ephemeral_storage_allocated_bytes', {}, '20x30'),
      of(scope, 'B', 'ecs_task_ephemeral_storage_used_bytes', {}, '5x30'),
      of(scope, 'B', 'ecs_task_ephemeral_storage_allocated_bytes', {}, '20x30'),
    ],
    '10m', '20m',
    [{
      labels: identity(scope),
      severity: 'warning',
      description: 'Task %s (family checkout) has used 95%% of its ephemeral storage: when it is full, its containers fail to write.' % ids.A,
    }],
  ),
];

// The recording rules: identity attached, tasks told apart, services summed.
local ruleCase(scope) = {
  interval: '1m',
  input_series: [
    info(scope, 'A'),
    info(scope, 'B'),
  ] + [
    of(scope, task, 'ecs_task_identity_info', { task_arn: arn(task), group: 'service:checkout' }, '1x20')
    for task in ['A', 'B']
  ] + [
    of(scope, 'A', 'ecs_container_cpu_usage_seconds_total', { container_name: 'web' }, '0+30x20'),
    of(scope, 'A', 'ecs_container_cpu_reserved_vcpus', { container_name: 'web' }, '1x20'),
    of(scope, 'A', 'ecs_task_cpu_limit_vcpus', {}, '2x20'),
    of(scope, 'A', 'ecs_container_memory_working_set_bytes', { container_name: 'web' }, '300x20'),
    of(scope, 'A', 'ecs_container_memory_enforced_limit_bytes', { container_name: 'web' }, '1200x20'),
    of(scope, 'A', 'ecs_network_receive_bytes_total', { interface: 'eth1' }, '0+600x20'),
    of(scope, 'B', 'ecs_container_cpu_usage_seconds_total', { container_name: 'web' }, '0+6x20'),
    of(scope, 'B', 'ecs_container_memory_working_set_bytes', { container_name: 'web' }, '100x20'),
    of(scope, 'B', 'ecs_network_receive_bytes_total', { interface: 'eth1' }, '0+60x20'),
  ],
  local A = identity(scope),
  local B = scopes[scope].labels('B') + { task_arn: arn('B'), task_id: ids.B, family: 'checkout', cluster: cluster },
  promql_expr_test: [
    {
      expr: 'task_container:ecs_container_cpu_usage_seconds_total:rate5m',
      eval_time: '10m',
      exp_samples: [
        { labels: 'task_container:ecs_container_cpu_usage_seconds_total:rate5m' + selector(A + { container_name: 'web' }), value: 0.5 },
        { labels: 'task_container:ecs_container_cpu_usage_seconds_total:rate5m' + selector(B + { container_name: 'web' }), value: 0.1 },
      ],
    },
    {
      expr: 'task:ecs_container_cpu_usage_seconds_total:ratio_limit',
      eval_time: '10m',
      exp_samples: [{ labels: 'task:ecs_container_cpu_usage_seconds_total:ratio_limit' + selector(A), value: 0.25 }],
    },
    {
      expr: 'task_container:ecs_container_cpu_usage_seconds_total:ratio_reservation',
      eval_time: '10m',
      exp_samples: [{ labels: 'task_container:ecs_container_cpu_usage_seconds_total:ratio_reservation' + selector(A + { container_name: 'web' }), value: 0.5 }],
    },
    {
      expr: 'task_container:ecs_container_memory_working_set_bytes:ratio_limit',
      eval_time: '10m',
      exp_samples: [{ labels: 'task_container:ecs_container_memory_working_set_bytes:ratio_limit' + selector(A + { container_name: 'web' }), value: 0.25 }],
    },
    {
      expr: 'task:ecs_network_receive_bytes_total:sum_rate5m',
      eval_time: '10m',
      exp_samples: [
        { labels: 'task:ecs_network_receive_bytes_total:sum_rate5m' + selector(A), value: 10 },
        { labels: 'task:ecs_network_receive_bytes_total:sum_rate5m' + selector(B), value: 1 },
      ],
    },
    {
      expr: 'service:ecs_container_cpu_usage_seconds_total:sum_rate5m',
      eval_time: '10m',
      exp_samples: [{ labels: 'service:ecs_container_cpu_usage_seconds_total:sum_rate5m' + selector({ cluster: cluster, service: 'checkout' }), value: 0.6 }],
    },
    {
      expr: 'service:ecs_container_memory_working_set_bytes:sum',
      eval_time: '10m',
      exp_samples: [{ labels: 'service:ecs_container_memory_working_set_bytes:sum' + selector({ cluster: cluster, service: 'checkout' }), value: 400 }],
    },
  ],
};

{
  rule_files: ['prometheus_alerts.yaml', 'prometheus_rules.yaml'],
  evaluation_interval: '1m',
  tests: std.flattenArrays([alertCases(scope) + [ruleCase(scope)] for scope in ['task', 'instance']]),
}
