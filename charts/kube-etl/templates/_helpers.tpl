{{/*
Names, labels and derived values that several templates share. Every name starts with "kube-etl.".
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "kube-etl.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every resource name: fullnameOverride, or the release name followed by the chart name
unless the release name already contains it. Kept to 40 characters so that suffixes such as
"-postgresql" stay within the 63 characters of a label value.
*/}}
{{- define "kube-etl.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The chart label value: name and version. */}}
{{- define "kube-etl.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every resource. */}}
{{- define "kube-etl.labels" -}}
helm.sh/chart: {{ include "kube-etl.chart" . }}
{{ include "kube-etl.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kube-etl
{{- end }}

{{/* Labels that select this release's resources; a component label narrows them further. */}}
{{- define "kube-etl.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kube-etl.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of the operator's resources, and the selector of its pods. */}}
{{- define "kube-etl.operator.labels" -}}
{{ include "kube-etl.labels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "kube-etl.operator.selectorLabels" -}}
{{ include "kube-etl.selectorLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{/* Labels of the bundled Postgres, and the selector of its pod. */}}
{{- define "kube-etl.postgresql.labels" -}}
{{ include "kube-etl.labels" . }}
app.kubernetes.io/component: postgresql
{{- end }}

{{- define "kube-etl.postgresql.selectorLabels" -}}
{{ include "kube-etl.selectorLabels" . }}
app.kubernetes.io/component: postgresql
{{- end }}

{{/* The operator's image reference: by digest when one is set, otherwise by tag. */}}
{{- define "kube-etl.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "kube-etl.operator.fullname" -}}
{{- printf "%s-operator" (include "kube-etl.fullname" .) }}
{{- end }}

{{- define "kube-etl.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "kube-etl.operator.fullname" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- required "operator.serviceAccount.name must name an existing ServiceAccount when operator.serviceAccount.create is false" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The job pods' ServiceAccount; empty means the namespace's default account. */}}
{{- define "kube-etl.jobs.serviceAccountName" -}}
{{- if .Values.jobs.serviceAccount.create }}
{{- default (printf "%s-job" (include "kube-etl.fullname" .)) .Values.jobs.serviceAccount.name }}
{{- else }}
{{- .Values.jobs.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kube-etl.leaseName" -}}
{{- default (include "kube-etl.operator.fullname" .) .Values.operator.leaseName }}
{{- end }}

{{- define "kube-etl.postgresql.fullname" -}}
{{- printf "%s-postgresql" (include "kube-etl.fullname" .) }}
{{- end }}

{{/*
The namespaces where ETLTasks run and the chart creates the job pods' ServiceAccount and database
Secret: rbac.watchNamespaces of a namespaced operator, then jobs.namespaces, without repeats. The
result is a JSON list, read back with fromJsonArray.
*/}}
{{- define "kube-etl.taskNamespaces" -}}
{{- $namespaces := list }}
{{- if eq .Values.rbac.scope "namespaced" }}
{{- $namespaces = concat $namespaces .Values.rbac.watchNamespaces }}
{{- end }}
{{- $namespaces = concat $namespaces .Values.jobs.namespaces | uniq }}
{{- toJson $namespaces }}
{{- end }}

{{/*
The Secret and key in the release namespace that hold the task database URL for the operator. Fails
the render unless exactly one source of the task database is set.
*/}}
{{- define "kube-etl.taskDatabase.sources" -}}
{{- $sources := list }}
{{- if .Values.taskDatabase.url }}{{ $sources = append $sources "taskDatabase.url" }}{{ end }}
{{- if .Values.taskDatabase.existingSecret }}{{ $sources = append $sources "taskDatabase.existingSecret" }}{{ end }}
{{- if .Values.postgresql.enabled }}{{ $sources = append $sources "postgresql.enabled" }}{{ end }}
{{- if not $sources }}
{{- fail "kube-etl needs a task database: set taskDatabase.url, taskDatabase.existingSecret or postgresql.enabled=true" }}
{{- else if gt (len $sources) 1 }}
{{- fail (printf "kube-etl needs exactly one task database, but %s are set: keep one of them" (join ", " $sources)) }}
{{- end }}
{{- end }}

{{- define "kube-etl.taskDatabase.secretName" -}}
{{- include "kube-etl.taskDatabase.sources" . }}
{{- if .Values.taskDatabase.existingSecret }}
{{- .Values.taskDatabase.existingSecret }}
{{- else }}
{{- printf "%s-database" (include "kube-etl.fullname" .) }}
{{- end }}
{{- end }}

{{- define "kube-etl.taskDatabase.secretKey" -}}
{{- if .Values.taskDatabase.existingSecret }}
{{- .Values.taskDatabase.existingSecretKey }}
{{- else }}
{{- print "url" }}
{{- end }}
{{- end }}

{{/* The restricted security context of every container that the chart runs. */}}
{{- define "kube-etl.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}
