{{/* Names: "<namePrefix>-<component>" (or an explicit "name"), the names the kustomize manifests use by default. */}}
{{- define "aim.name" -}}
{{- if .name -}}
{{- .name -}}
{{- else -}}
{{- printf "%s-%s" .root.Values.namePrefix .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object: the kustomize ones plus Helm's. Call with (dict "root" $ "component" "extender" "role" "scheduler-extender"). */}}
{{- define "aim.labels" -}}
app.kubernetes.io/name: {{ include "aim.name" . }}
app.kubernetes.io/component: {{ .role }}
app.kubernetes.io/part-of: aim-gpu-sharing
{{- if not .root.Values.renderedManifests }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Pod selector: the name label only (as in the kustomize manifests; selectors are immutable). */}}
{{- define "aim.selector" -}}
app.kubernetes.io/name: {{ include "aim.name" . }}
{{- end -}}

{{- define "aim.image" -}}
{{- printf "%s:%s" .repository (toString .tag) -}}
{{- end -}}

{{/* The cluster version the chart writes for: kubeVersionOverride, else the API server's. */}}
{{- define "aim.kubeVersion" -}}
{{- default .Capabilities.KubeVersion.Version .Values.kubeVersionOverride | trimPrefix "v" -}}
{{- end -}}

{{/* major.minor.patch of that version, every suffix (-rc.1, -eks-..., +k3s1) stripped. */}}
{{- define "aim.kubeVersionCore" -}}
{{- $v := include "aim.kubeVersion" . -}}
{{- $core := regexFind "^[0-9]+\\.[0-9]+\\.[0-9]+" $v -}}
{{- if not $core -}}
{{- fail (printf "kubeVersionOverride / cluster version %q: expected a version like v1.30.2" $v) -}}
{{- end -}}
{{- $core -}}
{{- end -}}

{{/*
KubeSchedulerConfiguration apiVersion: v1 is GA from Kubernetes 1.25 on; before it (and for a 1.25
pre-release such as v1.25.0-alpha.2 or v1.25.0-mykubernetes, whose scheduler rejects v1) v1beta3,
which exists from 1.23 and is removed in 1.29. A 1.25 build with a vendor suffix gets v1beta3 too,
which every 1.25 scheduler accepts.
*/}}
{{- define "aim.schedulerApiVersion" -}}
{{- $v := include "aim.kubeVersion" . -}}
{{- $core := include "aim.kubeVersionCore" . -}}
{{- $parts := splitList "." $core -}}
{{- $major := index $parts 0 | atoi -}}
{{- $minor := index $parts 1 | atoi -}}
{{- $suffixed := ne $v $core -}}
{{- if or (gt $major 1) (gt $minor 25) (and (eq $minor 25) (not $suffixed)) -}}
kubescheduler.config.k8s.io/v1
{{- else if ge $minor 23 -}}
kubescheduler.config.k8s.io/v1beta3
{{- else -}}
{{- fail (printf "Kubernetes %s: the scheduler wiring needs 1.23 or newer (KubeSchedulerConfiguration v1beta3)" $v) -}}
{{- end -}}
{{- end -}}

{{/* kube-scheduler image: the tag defaults to the cluster's version without suffixes. */}}
{{- define "aim.schedulerImage" -}}
{{- $tag := .Values.scheduler.image.tag | default (printf "v%s" (include "aim.kubeVersionCore" .)) -}}
{{- printf "%s:%s" .Values.scheduler.image.repository $tag -}}
{{- end -}}

{{- define "aim.extenderHost" -}}
{{- printf "%s.%s.svc" (include "aim.name" (dict "root" . "component" "extender")) .Release.Namespace -}}
{{- end -}}

{{/*
The extenders: entry, field for field extender/scheduler_config.py extender_entry() (a test renders
the chart and compares it with that function's output).
*/}}
{{- define "aim.extenderEntry" -}}
{{- $tls := .Values.extender.tls.enabled -}}
- urlPrefix: {{ printf "%s://%s:%d" (ternary "https" "http" $tls) (include "aim.extenderHost" .) (int .Values.extender.port) }}
  filterVerb: filter
  # Preemption victims are picked by kube-scheduler's plugins alone unless the extender has a
  # preemptVerb: /preempt drops nodes whose partitions are too small (docs/extender.md "Preemption").
  preemptVerb: preempt
  prioritizeVerb: prioritize
  # One step of the best-fit score (10 x 150) outranks every default in-tree score plugin (1,200);
  # docs/deployment.md "Why weight 150".
  weight: 150
  enableHTTPS: {{ $tls }}
  {{- if $tls }}
  tlsConfig:
    # Always a CA: without one kube-scheduler skips verification (extender.go makeTransport).
    insecure: false
    caFile: {{ include "aim.schedulerCaDir" . }}/ca.crt
    serverName: {{ include "aim.extenderHost" . }}
  {{- end }}
  nodeCacheCapable: {{ eq .Values.extender.cacheMode "watch" }}
  managedResources:
    - name: {{ .Values.resourceName }}
      ignoredByScheduler: false
  # The extender answers from memory in milliseconds; a filter timeout fails the attempt.
  httpTimeout: 2s
  # Unreachable extender: GPU-partition pods stay Pending rather than land on too-small partitions.
  ignorable: false
{{- end -}}

{{- define "aim.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Pod template of the certs Job and CronJob. */}}
{{- define "aim.certsPod" -}}
metadata:
  labels:
    {{- include "aim.labels" .c | nindent 4 }}
spec:
  serviceAccountName: {{ .certs }}
  restartPolicy: OnFailure
  {{- with .root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    seccompProfile:
      type: RuntimeDefault
  containers:
    - name: certs
      image: {{ include "aim.image" .root.Values.extender.image }}
      imagePullPolicy: {{ .root.Values.extender.image.pullPolicy }}
      args:
        {{- toYaml .args | nindent 8 }}
      resources:
        requests:
          cpu: 50m
          memory: 64Mi
        limits:
          memory: 128Mi
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities:
          drop: ["ALL"]
{{- end -}}

{{/* The extender's serving Secret (scheduler TLS) and where the second scheduler mounts its CA. */}}
{{- define "aim.extenderTlsSecret" -}}
{{- .Values.extender.tls.secretName | default (printf "%s-tls" (include "aim.name" (dict "root" . "component" "extender"))) -}}
{{- end -}}

{{- define "aim.schedulerCaDir" -}}
/etc/aim-gpu-scheduler-extender-ca
{{- end -}}

{{/* The self-signed cert-manager Issuer (the name manifests/webhook/cert-manager uses). */}}
{{- define "aim.issuer" -}}
{{- printf "%s-selfsigned" (include "aim.name" (dict "root" . "component" "webhook")) -}}
{{- end -}}

{{/*
The schedulerName the webhook writes into sized objects (--webhook-scheduler-name), or nothing:
webhook.setSchedulerName auto = only when this chart runs that scheduler (scheduler.mode
second-scheduler or native); with default-scheduler the profile exists only once the user configured it.
*/}}
{{- define "aim.webhookSchedulerName" -}}
{{- $set := .Values.webhook.setSchedulerName -}}
{{- if or (eq (toString $set) "true") (and (eq (toString $set) "auto") (include "aim.runsScheduler" .)) -}}
{{- .Values.scheduler.name -}}
{{- end -}}
{{- end -}}

{{/* "true" when the chart runs its own kube-scheduler (scheduler.mode second-scheduler or native), else empty. */}}
{{- define "aim.runsScheduler" -}}
{{- if has .Values.scheduler.mode (list "second-scheduler" "native") -}}true{{- end -}}
{{- end -}}

{{/*
"true" when the device plugin DaemonSet is installed, else empty: deviceplugin.enabled, and with
DRA mode on only if dra.keepDevicePlugin (both on one node would hand out the same partitions).
*/}}
{{- define "aim.devicePluginOn" -}}
{{- if and .Values.deviceplugin.enabled (or (not .Values.dra.enabled) .Values.dra.keepDevicePlugin) -}}true{{- end -}}
{{- end -}}

{{/* The DRA driver name: sizing.contract.DRA_DRIVER (a test keeps the two equal). */}}
{{- define "aim.draDriver" -}}
gpu-partition.amd.com
{{- end -}}

{{/* The MutatingWebhookConfiguration of DRA mode (ResourceClaimTemplates): "<webhook name>-dra". */}}
{{- define "aim.draWebhookName" -}}
{{- printf "%s-dra" (include "aim.name" (dict "root" . "component" "webhook")) -}}
{{- end -}}

{{/* "true" when DRA mode's claim-template webhook is installed (dra.enabled and webhook.enabled), else empty. */}}
{{- define "aim.draWebhookOn" -}}
{{- if and .Values.dra.enabled .Values.webhook.enabled -}}true{{- end -}}
{{- end -}}
