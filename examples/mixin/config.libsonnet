// What a user of the mixin may change, kubernetes-mixin style: override `_config` with `+::`.
{
  _config+:: {
    // The exporter's targets. The default matches the jobs of examples/: ecs-task (a sidecar
    // scraped by a Prometheus in the task), ecs-exporter (sidecars found by ECS discovery) and
    // ecs-exporter-instances (one daemon per instance, --ecs.scope=instance).
    selector: 'job=~"ecs-task|ecs-exporter|ecs-exporter-instances"',

    // What tells tasks apart. Task scope: one task per target, so the target's labels.
    // Instance scope: many tasks per target, each series carries the task's ARN. Every rule
    // works in both scopes at once (see lib.libsonnet, identity).
    targetLabels: ['instance', 'job'],
    taskLabel: 'task_arn',
    // Taken from ecs_task_metadata_info onto every task and container alert and record, so
    // that an alert names its task and can be routed by cluster or family.
    identityLabels: ['task_arn', 'task_id', 'family', 'cluster'],

    // Thresholds (ratios) and `for` windows.
    memoryNearLimitRatio: 0.9,
    memoryNearLimitFor: '15m',
    memoryPressureRatio: 0.8,
    memoryPressureFor: '15m',
    cpuNearLimitRatio: 0.9,
    cpuNearLimitFor: '15m',
    cpuNearReservationRatio: 0.9,
    cpuNearReservationFor: '30m',
    restartingFor: '15m',
    unhealthyFor: '5m',
    exitedFor: '5m',
    clockFor: '5m',
    clockErrorBoundSeconds: 0.1,
    ephemeralStorageRatio: 0.85,
    ephemeralStorageFor: '15m',
    metadataUnreadableFor: '5m',
    exporterDownFor: '5m',
    rejectingScrapesFor: '15m',

    runbookURLPattern: 'https://github.com/ecs-exporter-rs/ecs_exporter/blob/main/docs/runbook.md#%s',

    dashboardUID: 'ecs-exporter-tasks',
    dashboardTitle: 'Amazon ECS tasks (ecs_exporter)',
  },
}
