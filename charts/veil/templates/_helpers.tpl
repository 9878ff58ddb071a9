{{/*
Names and labels shared by every template. The tests render the chart with the real helm
(tools/chart-check), so any Helm/Sprig function may be used.
*/}}

{{/* Chart name, overridable. */}}
{{- define "veil.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Full resource name: fullnameOverride, else "<release>" when the release is named like the chart
(`helm install veil …` gives `ds/veil`), else "<release>-<chart>". 63 chars: DNS label limit.
*/}}
{{- define "veil.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "veil.name" . -}}
{{- if eq .Release.Name $name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "veil-0.1.0", the helm.sh/chart label. */}}
{{- define "veil.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels: stable for the life of a release (DaemonSet selectors are immutable). */}}
{{- define "veil.selectorLabels" -}}
app.kubernetes.io/name: {{ include "veil.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Standard labels on every object. */}}
{{- define "veil.labels" -}}
helm.sh/chart: {{ include "veil.chart" . }}
{{ include "veil.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: agent
app.kubernetes.io/part-of: veil
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "veil.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "veil.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Where the agent posts Events about Nodes: core/v1 Events about a cluster-scoped object are
accepted only in `default` (apiserver validation), so this is not a value. */}}
{{- define "veil.eventsNamespace" -}}
default
{{- end -}}

{{- define "veil.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
The agent's config file, in the agent's own schema (core's keys: packages/agent-core/src/config/schema.ts;
each backend section: that backend's `config` export; strict: unknown keys are errors). Strings go through toJson, which yields valid, safely quoted
YAML scalars. nodeName is NOT here: it comes from the VEIL_NODE_NAME env (downward API).
*/}}
{{- define "veil.agentConfig" -}}
encryption:
  enabled: {{ .Values.encryption.enabled }}
  type: {{ .Values.encryption.type | toJson }}
  nodeEncryption: {{ .Values.encryption.nodeEncryption }}
  strictMode:
    enabled: {{ .Values.encryption.strictMode.enabled }}
    cidrs: {{ .Values.encryption.strictMode.cidrs | toJson }}
    allowRemoteNodeIdentities: {{ .Values.encryption.strictMode.allowRemoteNodeIdentities }}
  {{- /* Every backend section (wireguard, ipsec, a contributor's) goes through unchanged: the
  backend that owns it validates it in the agent, naming bad keys by their full path. */}}
  {{- range $section, $values := .Values.encryption }}
  {{- if kindIs "map" $values }}
  {{- if ne $section "strictMode" }}
  {{ $section }}:
    {{- toYaml $values | nindent 4 }}
  {{- end }}
  {{- end }}
  {{- end }}
stateDir: {{ .Values.stateDir | toJson }}
podVethPatterns: {{ .Values.podVethPatterns | toJson }}
metrics:
  enabled: {{ .Values.metrics.enabled }}
  port: {{ .Values.metrics.port }}
  # Loopback here; the DaemonSet's VEIL_METRICS_HOST (status.hostIP) binds it to the node's address.
  host: "127.0.0.1"
health:
  port: {{ .Values.health.port }}
  host: "127.0.0.1"
status:
  socketPath: "/run/veil/status.sock"
logLevel: {{ .Values.logLevel | toJson }}
eventsNamespace: {{ include "veil.eventsNamespace" . | toJson }}
# Node IDs are allocated (nodeId 0) as Leases veil-node-id-<id> here (IPsec; see README "Node IDs").
nodeIdNamespace: {{ .Release.Namespace | toJson }}
{{- end -}}
