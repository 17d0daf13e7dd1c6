{{/*
The modes this chart knows; anything else fails the render.
*/}}
{{- define "db-init.mode" -}}
{{- $modes := list "initContainer" "job" "indexedJob" -}}
{{- if not (has .Values.mode $modes) -}}
{{- fail (printf "mode must be one of %s, not %q" (join ", " $modes) (toString .Values.mode)) -}}
{{- end -}}
{{- .Values.mode -}}
{{- end -}}

{{- define "db-init.labels" -}}
app.kubernetes.io/name: db-init
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
{{- end -}}

{{/*
The Job's name: the release and its revision, so an upgrade creates a new Job rather than
changing the old one (a Job's pod template is immutable). The prefix is cut to leave room for
the revision within the 63 characters of the job-name label.
*/}}
{{- define "db-init.jobName" -}}
{{- $prefix := printf "%s-db-init%s" .Release.Name (ternary "-fleet" "" (eq .Values.mode "indexedJob")) | trunc 52 | trimSuffix "-" -}}
{{- printf "%s-r%d" $prefix (int .Release.Revision) -}}
{{- end -}}

{{- define "db-init.image" -}}
{{- $repo := required "image.repository is required" .Values.image.repository -}}
{{- if .Values.image.digest -}}
{{- if not (hasPrefix "sha256:" .Values.image.digest) -}}
{{- fail (printf "image.digest must start with sha256:, not %q" .Values.image.digest) -}}
{{- end -}}
{{- printf "%s@%s" $repo .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
DATABASE_URL from the Secret, by reference only.
*/}}
{{- define "db-init.databaseUrl" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ required "database.existingSecret is required: the Secret holding the database URL (kubectl create secret generic NAME --from-file=url=FILE)" .Values.database.existingSecret | quote }}
      key: {{ required "database.key is required" .Values.database.key | quote }}
{{- end -}}

{{/*
The db-init container. Its context needs .Values (this chart's values) and .Chart; an app chart
that has this chart as a dependency calls it as
  {{ include "db-init.initContainer" (dict "Values" (index .Values "db-init") "Chart" (dict "AppVersion" "0.1.0")) | nindent 8 }}
Extra environment (indexedJob) comes in .extraEnv.
*/}}
{{- define "db-init.container" -}}
- name: db-init
  image: {{ include "db-init.image" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args: {{ toJson .Values.args }}
  env:
    {{- include "db-init.databaseUrl" . | nindent 4 }}
    - name: DB_INIT_LOG_FORMAT
      value: {{ .Values.logFormat | quote }}
    {{- with .extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    {{- with .Values.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  resources:
    {{- toYaml (default .Values.resources .resources) | nindent 4 }}
  # `kubectl describe pod` shows db-init's last lines when it failed.
  terminationMessagePolicy: FallbackToLogsOnError
{{- end -}}

{{- define "db-init.initContainer" -}}
{{- include "db-init.container" (dict "Values" .Values "Chart" .Chart) -}}
{{- end -}}

{{/*
The pod spec's common part.
*/}}
{{- define "db-init.podCommon" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
The Jobs' metadata: the hook annotations when hook.enabled.
*/}}
{{- define "db-init.jobMetadata" -}}
name: {{ include "db-init.jobName" . }}
labels:
  {{- include "db-init.labels" . | nindent 2 }}
{{- if .Values.hook.enabled }}
annotations:
  helm.sh/hook: pre-install,pre-upgrade
  helm.sh/hook-weight: {{ .Values.hook.weight | quote }}
  helm.sh/hook-delete-policy: {{ .Values.hook.deletePolicy | quote }}
{{- end }}
{{- end -}}

{{/*
podFailurePolicy: `action` at once on the exit codes a retry meets again; an evicted or
preempted pod (DisruptionTarget) is retried without counting.
*/}}
{{- define "db-init.podFailurePolicy" -}}
podFailurePolicy:
  rules:
    - action: {{ .action }}
      onExitCodes:
        containerName: db-init
        operator: In
        values: {{ toJson .codes }}
      # Empty, as the API requires beside onExitCodes (the 1.28 schemas list it as required).
      onPodConditions: []
    - action: Ignore
      onPodConditions:
        - type: DisruptionTarget
          status: "True"
{{- end -}}
