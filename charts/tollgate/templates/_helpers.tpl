{{/* Labels on every object: the app label the selectors use (as in k8s/), plus Helm's own. */}}
{{- define "tollgate.labels" -}}
{{- if .app }}
app: {{ .app }}
{{- end }}
app.kubernetes.io/part-of: tollgate
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end }}

{{/* Pod template labels: selector label plus part-of (Helm's chart label would roll pods on every chart bump). */}}
{{- define "tollgate.podLabels" -}}
app: {{ .app }}
app.kubernetes.io/part-of: tollgate
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end }}

{{- define "tollgate.image" -}}
{{ printf "%s:%s" .repository (toString .tag) }}
{{- end }}

{{/* DATABASE_URL (and the password it is built from, for the in-cluster Postgres). */}}
{{- define "tollgate.databaseEnv" -}}
{{- if .Values.postgres.enabled }}
- name: POSTGRES_PASSWORD
  valueFrom: { secretKeyRef: { name: {{ .Values.existingSecret }}, key: POSTGRES_PASSWORD } }
- name: DATABASE_URL
  value: postgres://tollgate:$(POSTGRES_PASSWORD)@postgres:5432/tollgate
{{- else }}
- name: DATABASE_URL
  valueFrom: { secretKeyRef: { name: {{ required "postgres.enabled is false: set postgres.external.existingSecret (a Secret whose key holds DATABASE_URL)" .Values.postgres.external.existingSecret }}, key: {{ .Values.postgres.external.key }} } }
{{- end }}
{{- end }}

{{/* REDIS_URL from a Secret, when the external Redis URL carries a password. */}}
{{- define "tollgate.redisEnv" -}}
{{- if and (not .Values.redis.enabled) .Values.redis.external.existingSecret }}
- name: REDIS_URL
  valueFrom: { secretKeyRef: { name: {{ .Values.redis.external.existingSecret }}, key: {{ .Values.redis.external.key }} } }
{{- end }}
{{- end }}

{{- define "tollgate.checkValues" -}}
{{- if not .Values.redis.enabled }}
{{- $ext := .Values.redis.external }}
{{- $n := 0 }}
{{- if $ext.url }}{{ $n = add1 $n }}{{ end }}
{{- if $ext.existingSecret }}{{ $n = add1 $n }}{{ end }}
{{- if $ext.clusterNodes }}{{ $n = add1 $n }}{{ end }}
{{- if ne (int $n) 1 }}
{{- fail "redis.enabled is false: set exactly one of redis.external.url, redis.external.existingSecret, redis.external.clusterNodes" }}
{{- end }}
{{- end }}
{{- end }}
