{{/* Names, labels and shared pieces for every template. */}}

{{- define "firebreak.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "firebreak.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: firebreak
{{- end -}}

{{/* Selector labels of one component; call with (dict "root" $ "component" "intake"). */}}
{{- define "firebreak.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "firebreak.secretName" -}}
{{- .Values.secret.existingSecret | default (printf "%s-connections" (include "firebreak.fullname" .)) -}}
{{- end -}}

{{/* The gateway as people reach it: publicUrl, else the ingress host; empty when neither. */}}
{{- define "firebreak.publicUrl" -}}
{{- if .Values.publicUrl -}}
{{- .Values.publicUrl -}}
{{- else if .Values.ingress.enabled -}}
{{- printf "%s://%s" (ternary "https" "http" (not (empty .Values.ingress.tls))) .Values.ingress.host -}}
{{- end -}}
{{- end -}}

{{/* The release's stream and subject prefix (values.jetstream), from the release when empty. */}}
{{- define "firebreak.streamName" -}}
{{- .Values.jetstream.streamName | default (include "firebreak.fullname" .) -}}
{{- end -}}

{{- define "firebreak.subjectPrefix" -}}
{{- .Values.jetstream.subjectPrefix | default (printf "%s.events.v1." (include "firebreak.fullname" .)) -}}
{{- end -}}

{{/* Settings every pod gets: the bus's names and limits, and where metrics are served. */}}
{{- define "firebreak.busAndMetricsEnv" -}}
- name: FIREBREAK_STREAM_NAME
  value: {{ include "firebreak.streamName" . | quote }}
- name: FIREBREAK_SUBJECT_PREFIX
  value: {{ include "firebreak.subjectPrefix" . | quote }}
{{- with .Values.jetstream.durablePrefix }}
- name: FIREBREAK_DURABLE_PREFIX
  value: {{ . | quote }}
{{- end }}
- name: FIREBREAK_STREAM_MAX_BYTES
  value: {{ .Values.jetstream.maxBytes | int64 | quote }}
- name: FIREBREAK_MAX_DELIVERIES
  value: {{ .Values.jetstream.maxDeliveries | quote }}
- name: FIREBREAK_METRICS_HOST
  value: "0.0.0.0"
- name: FIREBREAK_METRICS_PORT
  value: {{ .Values.metrics.port | quote }}
{{- end -}}

{{- define "firebreak.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* A container environment variable read from the connections Secret. */}}
{{- define "firebreak.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "firebreak.secretName" .root }}
      key: {{ .key }}
{{- end -}}

{{/* OpenTelemetry settings of one component; call with (dict "root" $ "component" "intake"). */}}
{{- define "firebreak.telemetryEnv" -}}
- name: OTEL_SERVICE_NAME
  value: {{ printf "firebreak-%s" .component | quote }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ printf "service.namespace=%s,k8s.namespace.name=%s,deployment.environment=%s" .root.Release.Name .root.Release.Namespace .root.Values.telemetry.environment | quote }}
{{- if .root.Values.telemetry.otlpEndpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .root.Values.telemetry.otlpEndpoint | quote }}
{{- else }}
{{- /* Without a collector, spans would pile up in the pod's scratch volume. */}}
- name: OTEL_TRACES_EXPORTER
  value: "none"
{{- end }}
{{- range $name, $value := .root.Values.telemetry.env }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{- define "firebreak.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsUser }}
fsGroup: {{ .Values.securityContext.runAsUser }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "firebreak.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: [ALL]
{{- end -}}

{{/* Which components call each gRPC service: the gateway is told where they are, and their
NetworkPolicies let only these callers in (and these callers out to them). Use with fromYaml. */}}
{{- define "firebreak.callers" -}}
intake: [gateway]
triage: [gateway]
notify: [gateway]
evidence: [gateway]
review: [gateway]
{{- end -}}

{{/* The port intake's SMTP listener takes reports by email on, in its pods: unprivileged, as
the pods run as a user who may not bind port 25; the Service maps inboundMail.service.port to it. */}}
{{- define "firebreak.inboundSmtpPort" -}}
2525
{{- end -}}

{{/* One NetworkPolicy egress rule from a networkPolicy.egress entry: empty ports, any port;
empty to, any address. */}}
{{- define "firebreak.egressRule" -}}
- ports:
    {{- toYaml .ports | nindent 4 }}
  {{- with .to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
