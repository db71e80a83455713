{{/* The release's name prefix of every object. */}}
{{- define "tutti.fullname" -}}
{{- if contains "tutti" .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-tutti" .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tutti.labels" -}}
app.kubernetes.io/name: tutti
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "bridge"). */}}
{{- define "tutti.selector" -}}
app.kubernetes.io/name: tutti
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "tutti.image" -}}
{{- printf "%s:%s" .repository .tag -}}
{{- end -}}

{{- define "tutti.bridge.name" -}}
{{- printf "%s-bridge" (include "tutti.fullname" .) -}}
{{- end -}}

{{/* The headless Service the focus resolves: one A record per ready bridge pod. */}}
{{- define "tutti.bridge.dnsName" -}}
{{- printf "%s.%s.svc.%s" (include "tutti.bridge.name" .) .Release.Namespace .Values.clusterDomain -}}
{{- end -}}

{{/* How many bridge pods can exist: the autoscaler's maximum, else the replicas. Per-pod
     Services and colibri-ws routes are rendered for each. */}}
{{- define "tutti.bridge.maxPods" -}}
{{- if .Values.bridge.autoscaling.enabled -}}
{{- .Values.bridge.autoscaling.maxReplicas -}}
{{- else -}}
{{- .Values.bridge.replicas -}}
{{- end -}}
{{- end -}}

{{- define "tutti.tls.secret" -}}
{{- default (printf "%s-tls" (include "tutti.fullname" .)) .Values.tls.existingSecret -}}
{{- end -}}

{{- define "tutti.focus.secret" -}}
{{- default (printf "%s-focus" (include "tutti.fullname" .)) .Values.focus.existingSecret -}}
{{- end -}}

{{- define "tutti.prosody.name" -}}
{{- printf "%s-prosody" (include "tutti.fullname" .) -}}
{{- end -}}

{{- define "tutti.coturn.host" -}}
{{- default .Values.domain .Values.coturn.host -}}
{{- end -}}

{{/* An existing Secret's value (kept across upgrades), else the given one, else a random one:
     (dict "root" $ "secret" NAME "key" KEY "value" VALUE). */}}
{{- define "tutti.keptSecret" -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace .secret -}}
{{- if .value -}}
{{- .value | b64enc -}}
{{- else if and $existing (index $existing.data .key) -}}
{{- index $existing.data .key -}}
{{- else -}}
{{- randAlphaNum 32 | b64enc -}}
{{- end -}}
{{- end -}}
