// PromQL shared by the alerts, the recording rules and the dashboard.
{
  // `expr` with the labels of config.identityLabels taken from ecs_task_metadata_info{info},
  // in either scope. Task scope: the target is the task, so join on the target's labels; the
  // series have no task_arn. Instance scope: join on the target's labels and task_arn. The
  // first join is kept to targets with one task (else it would match many to many); the
  // second matches nothing in task scope (the series' empty task_arn is no task's). On an
  // instance with one task both match, with the same labels, and `or` keeps one.
  identity(config, expr, info)::
    local target = std.join(', ', config.targetLabels);
    local withTask = std.join(', ', config.targetLabels + [config.taskLabel]);
    local fromInfo = std.join(', ', config.identityLabels);
    local fromInfoInstance = std.join(', ', [l for l in config.identityLabels if l != config.taskLabel]);
    local infoWithId = 'label_replace(ecs_task_metadata_info{%s}, "task_id", "$1", "%s", ".*/([^/]+)")' % [info, config.taskLabel];
    |||
      (
        %(expr)s
      )
      * on (%(target)s) group_left (%(fromInfo)s) (
        %(infoWithId)s
        and on (%(target)s) (count by (%(target)s) (ecs_task_metadata_info{%(selector)s}) == 1)
      )
      or
      (
        %(expr)s
      )
      * on (%(withTask)s) group_left (%(fromInfoInstance)s)
        %(infoWithId)s
    ||| % {
      expr: std.strReplace(std.stripChars(expr, '\n'), '\n', '\n  '),
      target: target,
      withTask: withTask,
      fromInfo: fromInfo,
      fromInfoInstance: fromInfoInstance,
      infoWithId: infoWithId,
      selector: config.selector,
    },

  // The labels that name one task in both scopes, for `by (...)` and `on (...)`.
  taskBy(config):: std.join(', ', config.targetLabels + [config.taskLabel]),
}
