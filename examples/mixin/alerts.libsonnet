// Alerts an on-call engineer acts on; each has a section in docs/runbook.md. They read the
// exporter's series only (not the recording rules), so prometheus_alerts.yaml works alone.
local lib = import 'lib.libsonnet';

{
  local c = $._config,
  local sel = c.selector,
  local withIdentity(expr) = lib.identity(c, expr, sel),
  local task = lib.taskBy(c),
  local alert(name, severity, expr, forWindow, summary, description) = {
    alert: name,
    expr: expr,
    'for': forWindow,
    labels: { severity: severity },
    annotations: {
      summary: summary,
      description: description,
      runbook_url: c.runbookURLPattern % std.asciiLower(name),
    },
  },
  // How an alert names its task and container (the identity's labels).
  local theTask = 'task {{ $labels.task_id }} (family {{ $labels.family }})',
  local theContainer = 'Container {{ $labels.container_name }} of ' + theTask,

  prometheusAlerts+:: {
    groups+: [{
      name: 'ecs-exporter',
      rules: [
        alert(
          'EcsMetadataUnreadable', 'warning',
          'ecs_up{%s} == 0' % sel,
          c.metadataUnreadableFor,
          'The exporter cannot read the ECS task metadata endpoint.',
          'The exporter at {{ $labels.instance }} (job {{ $labels.job }}) has not read the task metadata endpoint for %s: the figures of its task (in instance scope, of every task of its instance) are missing or stale.' % c.metadataUnreadableFor,
        ),
        alert(
          'EcsExporterDown', 'warning',
          'up{%s} == 0' % sel,
          c.exporterDownFor,
          'Prometheus cannot scrape the exporter.',
          'The target {{ $labels.instance }} of job {{ $labels.job }} has not answered a scrape for %s: nothing is known of its task (in instance scope, of its instance).' % c.exporterDownFor,
        ),
        alert(
          'EcsExporterRejectingScrapes', 'warning',
          'rate(promhttp_metric_handler_requests_total{%s, code="503"}[5m]) > 0' % sel,
          c.rejectingScrapesFor,
          'The exporter answers metrics requests with HTTP 503.',
          'The exporter at {{ $labels.instance }} (job {{ $labels.job }}) has answered {{ printf "%%.2f" $value }} metrics requests per second with 503 for %s: more clients scrape it at once than --web.max-requests lets in.' % c.rejectingScrapesFor,
        ),
        alert(
          'EcsContainerMemoryNearLimit', 'warning',
          withIdentity(|||
            ecs_container_memory_working_set_bytes{%s}
              / ecs_container_memory_enforced_limit_bytes{%s}
              > %g
          ||| % [sel, sel, c.memoryNearLimitRatio]),
          c.memoryNearLimitFor,
          'A container is close to its memory limit.',
          theContainer + ' has a working set of {{ $value | humanizePercentage }} of the memory limit the kernel enforces: at 100% it is OOM-killed. The working set leaves out the page cache the kernel can drop (usage, and on cgroup v2 the page cache, would overstate it).',
        ),
        alert(
          'EcsContainerMemoryPressure', 'warning',
          withIdentity(|||
            ecs_container_memory_working_set_bytes{%(sel)s}
              / ecs_container_memory_enforced_limit_bytes{%(sel)s}
              > %(ratio)g
            and (
              rate(ecs_container_memory_limit_failures_total{%(sel)s}[5m]) > 0
              or rate(ecs_container_memory_pages_reclaimed_total{%(sel)s}[5m]) > 0
            )
          ||| % { sel: sel, ratio: c.memoryPressureRatio }),
          c.memoryPressureFor,
          'A container keeps hitting its memory limit: an OOM kill is ahead.',
          theContainer + ' has a working set of {{ $value | humanizePercentage }} of its memory limit and the kernel keeps hitting the limit (cgroup v1) or reclaiming pages (cgroup v2) to stay under it. Limit hits and reclaim alone are normal for a container that reads files (the page cache fills up to the limit); with the working set this high they mean memory is running out.',
        ),
        alert(
          'EcsTaskCpuNearLimit', 'warning',
          withIdentity(|||
            sum by (%(task)s) (rate(ecs_container_cpu_usage_seconds_total{%(sel)s}[5m]))
              / on (%(task)s) ecs_task_cpu_limit_vcpus{%(sel)s}
              > %(ratio)g
          ||| % { sel: sel, task: task, ratio: c.cpuNearLimitRatio }),
          c.cpuNearLimitFor,
          'A task uses nearly all of its CPU limit: it is being throttled.',
          'Task {{ $labels.task_id }} (family {{ $labels.family }}) has used {{ $value | humanizePercentage }} of its CPU limit for %s, so the kernel throttles it. ECS reports CPU throttling as 0 even then (amazon-ecs-agent issue 4473), so this is the only sign of it.' % c.cpuNearLimitFor,
        ),
        alert(
          'EcsContainerCpuNearReservation', 'info',
          withIdentity(|||
            rate(ecs_container_cpu_usage_seconds_total{%(sel)s}[5m])
              / ecs_container_cpu_reserved_vcpus{%(sel)s}
              > %(ratio)g
          ||| % { sel: sel, ratio: c.cpuNearReservationRatio }),
          c.cpuNearReservationFor,
          'A container uses about as much CPU as its task definition reserves, or more.',
          theContainer + ' has used {{ $value | humanizePercentage }} of the CPU its task definition reserves for %s. The reservation is a share, not a cap: the container may use more while the CPU is free, and is held to its share when its neighbours want theirs.' % c.cpuNearReservationFor,
        ),
        alert(
          'EcsContainerRestarting', 'warning',
          withIdentity('increase(ecs_container_restarts_total{%s}[10m]) > 0' % sel),
          c.restartingFor,
          'A container keeps restarting.',
          theContainer + ' has restarted at least once every 10 minutes for %s: it keeps exiting, and its restart policy keeps starting it again.' % c.restartingFor,
        ),
        alert(
          'EcsContainerUnhealthy', 'warning',
          withIdentity('ecs_container_health_status{%s, status="UNHEALTHY"} == 1' % sel),
          c.unhealthyFor,
          'A container fails its health check.',
          theContainer + ' has been UNHEALTHY for %s.' % c.unhealthyFor,
        ),
        alert(
          'EcsContainerExitedNonZero', 'warning',
          // Of a task that is meant to run: a stopping task's containers exit non-zero
          // (SIGKILL is 137) on the way down.
          lib.identity(c, 'ecs_container_exit_code{%s} != 0' % sel, sel + ', desired_status="RUNNING"'),
          c.exitedFor,
          'A container of a running task exited with a non-zero code.',
          theContainer + ' exited with code {{ $value }} and its task goes on running without it.',
        ),
        alert(
          'EcsTaskClockNotSynchronized', 'warning',
          withIdentity('ecs_task_clock_synchronized{%s} == 0' % sel),
          c.clockFor,
          "A task's clock is not synchronized.",
          "The clock of task {{ $labels.task_id }} (family {{ $labels.family }}) has not been synchronized with the Amazon Time Sync Service for %s: AWS refuses requests signed with a clock more than 5 minutes off, and logs come out of order." % c.clockFor,
        ),
        alert(
          'EcsTaskClockErrorLarge', 'warning',
          withIdentity('ecs_task_clock_error_bound_seconds{%s} > %g' % [sel, c.clockErrorBoundSeconds]),
          c.clockFor,
          "A task's clock may be far from UTC.",
          'The clock of task {{ $labels.task_id }} (family {{ $labels.family }}) may be {{ $value | humanizeDuration }} from UTC (its error bound), more than %gs for %s.' % [c.clockErrorBoundSeconds, c.clockFor],
        ),
        alert(
          'EcsTaskEphemeralStorageNearFull', 'warning',
          withIdentity(|||
            ecs_task_ephemeral_storage_used_bytes{%(sel)s}
              / ecs_task_ephemeral_storage_allocated_bytes{%(sel)s}
              > %(ratio)g
          ||| % { sel: sel, ratio: c.ephemeralStorageRatio }),
          c.ephemeralStorageFor,
          "A Fargate task's ephemeral storage is nearly full.",
          'Task {{ $labels.task_id }} (family {{ $labels.family }}) has used {{ $value | humanizePercentage }} of its ephemeral storage: when it is full, its containers fail to write.',
        ),
      ],
    }],
  },
}
