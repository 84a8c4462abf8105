// The ecs_exporter mixin: alerts, recording rules and a dashboard, in the shape of the
// kubernetes-mixin and node-mixin (import it with jsonnet-bundler, override `_config`).
(import 'config.libsonnet')
+ (import 'alerts.libsonnet')
+ (import 'rules.libsonnet')
+ (import 'dashboard.libsonnet')
