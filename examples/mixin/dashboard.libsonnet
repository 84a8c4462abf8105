// The Grafana dashboard (rendered to examples/grafana-dashboard.json): tasks and containers,
// picked by cluster, family and task, in task scope and instance scope alike.
//
// Panels read the recording rules where there is one, and fall back to the same PromQL over
// the exporter's own series where the record is absent (`RECORD or (PROMQL)`: both carry the
// same labels, so `or` keeps the record where it exists). So the dashboard works imported
// alone, without the rules, and with them loaded reads the records (the fallback is still
// evaluated, over the selected tasks only).
local lib = import 'lib.libsonnet';

{
  local c = $._config,
  local ds = { type: 'prometheus', uid: '${DS_PROMETHEUS}' },
  local filter = 'cluster=~"$cluster", family=~"$family", task_arn=~"$task"',
  // The dashboard does not know the user's job names: no selector on the raw series.
  local any = c { selector: '' },
  // PromQL over the exporter's series, with the selected tasks' identity; in parentheses, as
  // it is an `or` of two joins.
  local joined(expr) = '(' + std.strReplace(lib.identity(any, expr, filter), '{}', '') + ')',
  local records = { [r.record]: std.strReplace(r.expr, '{}', '') for r in $.taskRecords('', filter) },
  local record(name) = '%s{%s} or (%s)' % [name, filter, records[name]],

  local target(expr, legend, refId) = {
    datasource: ds,
    refId: refId,
    expr: expr,
    legendFormat: legend,
  },
  local refIds = ['A', 'B', 'C', 'D'],
  local tableTarget(expr, refId) = { datasource: ds, refId: refId, expr: expr, format: 'table', instant: true },
  local timeseries(id, title, unit, grid, targets, description=null) = {
    id: id,
    type: 'timeseries',
    title: title,
    datasource: ds,
    gridPos: grid,
    targets: [target(targets[i][0], targets[i][1], refIds[i]) for i in std.range(0, std.length(targets) - 1)],
    fieldConfig: { defaults: { unit: unit }, overrides: [] },
    options: {},
    [if description != null then 'description']: description,
  },
  local stat(id, title, grid, expr, legend, red=false, description=null) = {
    id: id,
    type: 'stat',
    title: title,
    datasource: ds,
    gridPos: grid,
    targets: [target(expr, legend, 'A') + { instant: true }],
    fieldConfig: {
      defaults: if red then {
        thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'red', value: 1 }] },
      } else {},
      overrides: [],
    },
    options: {
      reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
      colorMode: 'value',
      graphMode: 'none',
      textMode: 'auto',
    },
    [if description != null then 'description']: description,
  },
  local grid(x, y, w, h) = { x: x, y: y, w: w, h: h },
  local half(x, y) = grid(x, y, 12, 8),
  local variable(name, label, definition) = {
    name: name,
    label: label,
    type: 'query',
    datasource: ds,
    definition: definition,
    query: { query: definition, refId: 'PrometheusVariableQueryEditor-VariableQuery' },
    refresh: 2,
    includeAll: true,
    multi: true,
    allValue: '.*',
    sort: 1,
    current: { text: 'All', value: '$__all' },
  },
  local perTask = '{{family}}/{{task_id}}',

  grafanaDashboards+:: {
    'ecs-exporter-tasks.json': {
      __inputs: [{
        name: 'DS_PROMETHEUS',
        label: 'Prometheus',
        description: 'The Prometheus that scrapes the exporters',
        type: 'datasource',
        pluginId: 'prometheus',
        pluginName: 'Prometheus',
      }],
      __requires: [
        { type: 'grafana', id: 'grafana', name: 'Grafana', version: '10.0.0' },
        { type: 'datasource', id: 'prometheus', name: 'Prometheus', version: '1.0.0' },
        { type: 'panel', id: 'stat', name: 'Stat', version: '' },
        { type: 'panel', id: 'table', name: 'Table', version: '' },
        { type: 'panel', id: 'timeseries', name: 'Time series', version: '' },
      ],
      title: c.dashboardTitle,
      uid: c.dashboardUID,
      description: 'Tasks and containers from ecs_exporter (https://github.com/ecs-exporter-rs/ecs_exporter), sidecars or one exporter per instance. Pick a cluster, family and task. Generated from examples/mixin; panels read its recording rules where loaded, else the same PromQL.',
      tags: ['ecs', 'aws', 'ecs_exporter'],
      timezone: 'browser',
      schemaVersion: 39,
      version: 1,
      editable: true,
      refresh: '30s',
      time: { from: 'now-6h', to: 'now' },
      templating: {
        list: [
          variable('cluster', 'Cluster', 'label_values(ecs_task_metadata_info, cluster)'),
          variable('family', 'Family', 'label_values(ecs_task_metadata_info{cluster=~"$cluster"}, family)'),
          variable('task', 'Task', 'label_values(ecs_task_metadata_info{cluster=~"$cluster", family=~"$family"}, task_arn)'),
        ],
      },
      panels: [
        stat(
          1, 'Tasks whose metadata endpoint is down', grid(0, 0, 6, 4),
          'count(ecs_up == 0) or vector(0)', 'down', red=true,
          description='Exporters whose last scrape could not read the task metadata endpoint (ecs_up 0). Not filtered by the variables: without metadata there is no identity to filter on. The EcsMetadataUnreadable alert.',
        ),
        stat(
          2, 'Tasks', grid(6, 0, 6, 4),
          'count(ecs_task_metadata_info{%s})' % filter, 'tasks',
        ),
        stat(
          3, 'Containers not running', grid(12, 0, 6, 4),
          'count(%s) or vector(0)' % joined('ecs_container_known_status{status!="RUNNING"} unless on (instance, job, task_arn, container_name) (ecs_container_exit_code == 0)'),
          'not running', red=true,
          description='Containers whose last known status is not RUNNING, except those that exited with code 0 (init and migration containers that finished on purpose).',
        ),
        stat(
          4, 'Container restarts (1h)', grid(18, 0, 6, 4),
          'sum(%s) or vector(0)' % joined('increase(ecs_container_restarts_total[1h])'), 'restarts',
        ),
        timeseries(5, 'CPU by container (vCPU)', 'short', half(0, 4), [
          [record('task_container:ecs_container_cpu_usage_seconds_total:rate5m'), perTask + ' {{container_name}}'],
          [joined('ecs_task_cpu_limit_vcpus'), perTask + ' task limit'],
        ]),
        timeseries(6, 'Task CPU, % of its limit', 'percent', half(12, 4), [
          ['100 * (%s)' % record('task:ecs_container_cpu_usage_seconds_total:ratio_limit'), perTask],
        ], description='At 100% the task is throttled; ECS reports its throttling counters as 0, so this is the sign of it (the EcsTaskCpuNearLimit alert).'),
        timeseries(7, 'Memory: working set, usage and limit', 'bytes', half(0, 12), [
          [joined('ecs_container_memory_working_set_bytes'), perTask + ' {{container_name}} working set'],
          [joined('ecs_container_memory_usage_bytes'), perTask + ' {{container_name}} usage'],
          [joined('ecs_container_memory_enforced_limit_bytes'), perTask + ' {{container_name}} limit'],
        ], description='Usage includes the page cache (on cgroup v2 all of it), which the kernel drops before it kills anything; the working set is what the OOM killer looks at.'),
        timeseries(8, "Memory working set, % of the container's limit", 'percent', half(12, 12), [
          ['100 * (%s)' % record('task_container:ecs_container_memory_working_set_bytes:ratio_limit'), perTask + ' {{container_name}}'],
        ], description='What the OOM killer looks at: working set (usage minus inactive file pages) against the limit the kernel enforces (the EcsContainerMemoryNearLimit alert).'),
        timeseries(9, 'Network throughput by task (receive +, transmit -)', 'Bps', half(0, 20), [
          [record('task:ecs_network_receive_bytes_total:sum_rate5m'), perTask + ' receive'],
          ['-(%s)' % record('task:ecs_network_transmit_bytes_total:sum_rate5m'), perTask + ' transmit'],
        ]),
        timeseries(10, 'Network errors and drops', 'pps', half(12, 20), [
          [joined('rate(ecs_network_receive_errors_total[5m]) + rate(ecs_network_receive_packets_dropped_total[5m])'), perTask + ' {{interface}} receive'],
          [joined('rate(ecs_network_transmit_errors_total[5m]) + rate(ecs_network_transmit_packets_dropped_total[5m])'), perTask + ' {{interface}} transmit'],
        ]),
        timeseries(11, 'Container restarts', 'short', half(0, 28), [
          [joined('increase(ecs_container_restarts_total[$__rate_interval])'), perTask + ' {{container_name}}'],
        ]),
        timeseries(12, 'CPU by container, % of its reservation', 'percent', half(12, 28), [
          ['100 * (%s)' % record('task_container:ecs_container_cpu_usage_seconds_total:ratio_reservation'), perTask + ' {{container_name}}'],
        ], description="The reservation (the task definition's cpu units) is a share, not a cap: above 100% the container uses CPU its neighbours do not want, and is held to its share when they do."),
        timeseries(13, 'Memory reclaim, pages per second (cgroup v2)', 'short', half(0, 36), [
          [joined('rate(ecs_container_memory_pages_scanned_total[5m])'), perTask + ' {{container_name}} scanned'],
          [joined('rate(ecs_container_memory_pages_reclaimed_total[5m])'), perTask + ' {{container_name}} reclaimed'],
        ], description='Pages the kernel scanned and reclaimed from the container cgroup. Steady reclaim with a high working set means an OOM kill is ahead (the EcsContainerMemoryPressure alert); cgroup v2 only (Amazon Linux 2023, Bottlerocket).'),
        timeseries(14, 'Memory limit hits (cgroup v1)', 'short', half(12, 36), [
          [joined('increase(ecs_container_memory_limit_failures_total[$__rate_interval])'), perTask + ' {{container_name}}'],
        ], description='Times a memory charge hit the container cgroup limit (not OOM kills); cgroup v1 only (Fargate, Amazon Linux 2).'),
        timeseries(15, 'Processes and threads (EC2)', 'short', half(0, 44), [
          [joined('ecs_container_pids'), perTask + ' {{container_name}}'],
          [joined('ecs_container_pids_limit'), perTask + ' {{container_name}} limit'],
        ], description='Processes and threads in each container, with the limit where one is set. Fargate does not report them.'),
        timeseries(16, 'Network by container, bridge mode (receive +, transmit -)', 'Bps', half(12, 44), [
          [joined('rate(ecs_container_network_receive_bytes_total[5m])'), perTask + ' {{container_name}} {{interface}} receive'],
          [joined('-rate(ecs_container_network_transmit_bytes_total[5m])'), perTask + ' {{container_name}} {{interface}} transmit'],
        ], description="Each container's own interfaces, for containers in bridge network mode (EC2). In awsvpc and host mode see the throughput by task."),
        timeseries(17, 'Exporter resident memory', 'bytes', half(0, 52), [
          [
            joined('process_resident_memory_bytes') + ' or (process_resident_memory_bytes and on (instance, job) (count by (instance, job) (ecs_task_metadata_info{%s}) > 1))' % filter,
            perTask + ' {{instance}}',
          ],
        ], description="The exporter's own footprint (exporter metrics, on by default). An exporter in instance scope covering several tasks is shown by its instance."),
        {
          id: 18,
          type: 'table',
          title: 'Containers: status, health, exit code, image',
          datasource: ds,
          gridPos: grid(0, 60, 24, 10),
          targets: [
            tableTarget(joined('max without (status) (label_replace(ecs_container_known_status, "known_status", "$1", "status", "(.*)"))'), 'A'),
            tableTarget(joined('max without (status) (label_replace(ecs_container_health_status, "health", "$1", "status", "(.*)"))'), 'B'),
            tableTarget(joined('ecs_container_exit_code'), 'C'),
            tableTarget(joined('ecs_container_info'), 'D'),
          ],
          fieldConfig: { defaults: {}, overrides: [] },
          options: { showHeader: true },
          transformations: [
            { id: 'merge', options: {} },
            {
              id: 'organize',
              options: {
                excludeByName: {
                  Time: true,
                  'Value #A': true,
                  'Value #B': true,
                  'Value #D': true,
                  __name__: true,
                  job: true,
                  instance: true,
                  task_arn: true,
                  cluster: true,
                },
                renameByName: {
                  'Value #C': 'exit code',
                  container_name: 'container',
                  known_status: 'status',
                  task_id: 'task',
                  image_id: 'image id',
                },
                indexByName: {
                  family: 0,
                  task_id: 1,
                  container_name: 2,
                  known_status: 3,
                  health: 4,
                  'Value #C': 5,
                  image: 6,
                  image_id: 7,
                },
              },
            },
          ],
        },
      ],
    },
  },
}
