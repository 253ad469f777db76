{{/* Names ---------------------------------------------------------------------------------------- */}}

{{- define "tokenscaler.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Object name prefix: the release name when it already contains the chart name (e.g. "tokenscaler"). */}}
{{- define "tokenscaler.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "tokenscaler.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tokenscaler.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tokenscaler.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "tokenscaler.labels" -}}
helm.sh/chart: {{ include "tokenscaler.chart" . }}
{{ include "tokenscaler.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: controller
app.kubernetes.io/part-of: tokenscaler
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "tokenscaler.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "tokenscaler.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "tokenscaler.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* Metrics APIs ---------------------------------------------------------------------------------- */}}

{{/*
The APIService objects of the selected mode, as a YAML list of {group, version}. The group/version pairs
are fixed by DESIGN.md: external.metrics.k8s.io/v1beta1 and custom.metrics.k8s.io/v1beta2.
*/}}
{{- define "tokenscaler.apiServices" -}}
{{- if eq .Values.metricsApi.mode "external" -}}
- {group: external.metrics.k8s.io, version: v1beta1}
{{- else if eq .Values.metricsApi.mode "custom" -}}
- {group: custom.metrics.k8s.io, version: v1beta2}
{{- else -}}
[]
{{- end -}}
{{- end -}}

{{/* Certificates ---------------------------------------------------------------------------------- */}}

{{- define "tokenscaler.tlsSecretName" -}}
{{- if eq .Values.certificates.source "secret" -}}
{{- required "certificates.secret.name is required when certificates.source is secret" .Values.certificates.secret.name -}}
{{- else -}}
{{- printf "%s-tls" (include "tokenscaler.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* DNS names the serving certificate carries; the aggregator checks <service>.<namespace>.svc. */}}
{{- define "tokenscaler.dnsNames" -}}
{{- $svc := include "tokenscaler.fullname" . -}}
- {{ printf "%s.%s.svc" $svc .Release.Namespace }}
- {{ printf "%s.%s.svc.%s" $svc .Release.Namespace .Values.clusterDomain }}
- {{ printf "%s.%s" $svc .Release.Namespace }}
- {{ $svc }}
{{- end -}}

{{/* cert-manager: the chart bootstraps its own CA unless an issuerRef is given. */}}
{{- define "tokenscaler.certManager.ownCa" -}}
{{- if and (eq .Values.certificates.source "cert-manager") (not .Values.certificates.certManager.issuerRef.name) -}}true{{- end -}}
{{- end -}}

{{/*
In keda mode KEDA must trust the serving certificate, so its CA has to be known when the chart renders
(the chart copies it into KEDA's namespace). With cert-manager and no issuerRef the chart therefore
generates the CA itself (reused on upgrades) and hands it to a cert-manager CA Issuer, instead of a
self-signed bootstrap whose CA exists only in the cluster.
*/}}
{{- define "tokenscaler.certManager.helmCa" -}}
{{- if and (include "tokenscaler.certManager.ownCa" .) (eq .Values.metricsApi.mode "keda") -}}true{{- end -}}
{{- end -}}

{{/*
Reuses a certificate set stored by an earlier release when it is complete, was issued for the same names
and is further than renewBeforeDays from expiry; otherwise returns nothing and the caller generates one.
Arguments: root, secret (namespace/name), keys (list of data keys that must exist), fingerprint, renewDays.
The expiry is kept in the annotation tokenscaler.dev/not-after because templates cannot parse X.509.
*/}}
{{- define "tokenscaler.reusableSecretData" -}}
{{- $existing := lookup "v1" "Secret" .namespace .name -}}
{{- if and $existing $existing.data $existing.metadata.annotations -}}
{{- $ann := $existing.metadata.annotations -}}
{{- $complete := true -}}
{{- range .keys -}}
{{- if not (index $existing.data .) -}}{{- $complete = false -}}{{- end -}}
{{- end -}}
{{- $notAfter := index $ann "tokenscaler.dev/not-after" | default "" -}}
{{- if and $complete $notAfter (eq (index $ann "tokenscaler.dev/fingerprint" | default "") .fingerprint) -}}
{{- $secondsLeft := sub (toDate "2006-01-02T15:04:05Z07:00" $notAfter | unixEpoch | int64) (now | unixEpoch | int64) -}}
{{- if gt $secondsLeft (mul .renewDays 86400) -}}
{{- toYaml (dict "data" $existing.data "notAfter" $notAfter) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "tokenscaler.notAfter" -}}
{{- dateInZone "2006-01-02T15:04:05Z07:00" (now | dateModify (printf "+%dh" (mul . 24))) "UTC" -}}
{{- end -}}

{{/*
The serving certificate generated by the chart (certificates.source generate), as YAML {caCert, cert, key,
notAfter}. Computed once per render and cached in the root context, so the Secret, the APIService caBundle
and KEDA's trust bundle carry the same CA.
*/}}
{{- define "tokenscaler.generatedServingTls" -}}
{{- if not (hasKey . "tokenscalerGeneratedServingTls") -}}
{{- $dnsNames := include "tokenscaler.dnsNames" . | fromYamlArray -}}
{{- $days := int .Values.certificates.generate.validityDays -}}
{{- $reuse := include "tokenscaler.reusableSecretData" (dict "namespace" .Release.Namespace "name" (include "tokenscaler.tlsSecretName" .) "keys" (list "tls.crt" "tls.key" "ca.crt") "fingerprint" (join "," $dnsNames) "renewDays" (int .Values.certificates.generate.renewBeforeDays)) | fromYaml -}}
{{- $tls := dict -}}
{{- if $reuse -}}
{{- $tls = dict "caCert" (index $reuse.data "ca.crt" | b64dec) "cert" (index $reuse.data "tls.crt" | b64dec) "key" (index $reuse.data "tls.key" | b64dec) "notAfter" $reuse.notAfter -}}
{{- else -}}
{{- $ca := genCA (printf "%s-ca" (include "tokenscaler.fullname" .)) $days -}}
{{- $cert := genSignedCert (first $dnsNames) nil $dnsNames $days $ca -}}
{{- $tls = dict "caCert" $ca.Cert "cert" $cert.Cert "key" $cert.Key "notAfter" (include "tokenscaler.notAfter" $days) -}}
{{- end -}}
{{- $_ := set . "tokenscalerGeneratedServingTls" (merge $tls (dict "fingerprint" (join "," $dnsNames))) -}}
{{- end -}}
{{- toYaml (index . "tokenscalerGeneratedServingTls") -}}
{{- end -}}

{{/* The private CA the chart generates for cert-manager in keda mode: {caCert, caKey, notAfter}. */}}
{{- define "tokenscaler.generatedCertManagerCa" -}}
{{- if not (hasKey . "tokenscalerGeneratedCertManagerCa") -}}
{{- $days := int .Values.certificates.generate.validityDays -}}
{{- $name := printf "%s-ca" (include "tokenscaler.fullname" .) -}}
{{- $reuse := include "tokenscaler.reusableSecretData" (dict "namespace" .Release.Namespace "name" $name "keys" (list "tls.crt" "tls.key") "fingerprint" $name "renewDays" (int .Values.certificates.generate.renewBeforeDays)) | fromYaml -}}
{{- $ca := dict -}}
{{- if $reuse -}}
{{- $ca = dict "caCert" (index $reuse.data "tls.crt" | b64dec) "caKey" (index $reuse.data "tls.key" | b64dec) "notAfter" $reuse.notAfter -}}
{{- else -}}
{{- $generated := genCA $name $days -}}
{{- $ca = dict "caCert" $generated.Cert "caKey" $generated.Key "notAfter" (include "tokenscaler.notAfter" $days) -}}
{{- end -}}
{{- $_ := set . "tokenscalerGeneratedCertManagerCa" (merge $ca (dict "fingerprint" $name)) -}}
{{- end -}}
{{- toYaml (index . "tokenscalerGeneratedCertManagerCa") -}}
{{- end -}}

{{/*
The PEM CA that verifies the serving certificate, when it is known at render time (empty otherwise:
cert-manager's cainjector fills the APIService caBundle from the Certificate).
*/}}
{{- define "tokenscaler.servingCaPem" -}}
{{- $source := .Values.certificates.source -}}
{{- if eq $source "generate" -}}
{{- (include "tokenscaler.generatedServingTls" . | fromYaml).caCert -}}
{{- else if eq $source "secret" -}}
{{- .Values.certificates.secret.caBundle -}}
{{- else if include "tokenscaler.certManager.helmCa" . -}}
{{- (include "tokenscaler.generatedCertManagerCa" . | fromYaml).caCert -}}
{{- else -}}
{{- .Values.certificates.certManager.caBundle -}}
{{- end -}}
{{- end -}}

{{/*
KEDA's client certificate (keda mode), signed by a client CA of its own that the controller trusts through
--client-ca-file. That CA is separate from the serving CA and from the cluster's front-proxy CA (the
contract's pitfall 13: never issue the front-proxy CA and --client-ca-file from the same CA).
Returns {caCert, cert, key, notAfter, fingerprint}; cached per render.
*/}}
{{- define "tokenscaler.kedaClientTls" -}}
{{- if not (hasKey . "tokenscalerKedaClientTls") -}}
{{- $cn := .Values.keda.clientCertificate.commonName -}}
{{- $days := int .Values.keda.clientCertificate.validityDays -}}
{{- $fullname := include "tokenscaler.fullname" . -}}
{{- $fingerprint := printf "CN=%s" $cn -}}
{{- $client := include "tokenscaler.reusableSecretData" (dict "namespace" .Values.keda.namespace "name" (printf "%s-keda-client" $fullname) "keys" (list "cert" "key") "fingerprint" $fingerprint "renewDays" (int .Values.certificates.generate.renewBeforeDays)) | fromYaml -}}
{{- $clientCa := include "tokenscaler.reusableSecretData" (dict "namespace" .Release.Namespace "name" (printf "%s-client-ca" $fullname) "keys" (list "ca.crt") "fingerprint" $fingerprint "renewDays" (int .Values.certificates.generate.renewBeforeDays)) | fromYaml -}}
{{- $tls := dict -}}
{{- if and $client $clientCa -}}
{{- $tls = dict "caCert" (index $clientCa.data "ca.crt" | b64dec) "cert" (index $client.data "cert" | b64dec) "key" (index $client.data "key" | b64dec) "notAfter" $client.notAfter -}}
{{- else -}}
{{- $ca := genCA (printf "%s-client-ca" $fullname) $days -}}
{{- $cert := genSignedCert $cn nil nil $days $ca -}}
{{- $tls = dict "caCert" $ca.Cert "cert" $cert.Cert "key" $cert.Key "notAfter" (include "tokenscaler.notAfter" $days) -}}
{{- end -}}
{{- $_ := set . "tokenscalerKedaClientTls" (merge $tls (dict "fingerprint" $fingerprint)) -}}
{{- end -}}
{{- toYaml (index . "tokenscalerKedaClientTls") -}}
{{- end -}}

{{/* Checks across values that the JSON schema cannot express; each message names the values to change. */}}
{{- define "tokenscaler.validate" -}}
{{- $mode := .Values.metricsApi.mode -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) -}}
{{- fail (printf "replicaCount is %d but leaderElection.enabled is false: replicas would all write status, Events and HPAs. Enable leaderElection or set replicaCount to 1." (int .Values.replicaCount)) -}}
{{- end -}}
{{- if and (eq .Values.certificates.source "secret") (eq $mode "keda") (not .Values.certificates.secret.caBundle) -}}
{{- fail "metricsApi.mode is keda and certificates.source is secret: set certificates.secret.caBundle to the PEM CA of that certificate, so KEDA can verify the controller." -}}
{{- end -}}
{{- if and (eq .Values.certificates.source "cert-manager") (eq $mode "keda") .Values.certificates.certManager.issuerRef.name (not .Values.certificates.certManager.caBundle) -}}
{{- fail "metricsApi.mode is keda with certificates.certManager.issuerRef: set certificates.certManager.caBundle to the PEM CA of that issuer, so KEDA can verify the controller." -}}
{{- end -}}
{{- if and .Values.podDisruptionBudget.enabled (kindIs "invalid" .Values.podDisruptionBudget.minAvailable) (kindIs "invalid" .Values.podDisruptionBudget.maxUnavailable) -}}
{{- fail "podDisruptionBudget.enabled is true but neither maxUnavailable nor minAvailable is set." -}}
{{- end -}}
{{- /* Only one backend can serve a group/version (contract section 7.1): stop before Helm's obscure conflict error. */ -}}
{{- range (include "tokenscaler.apiServices" . | fromYamlArray) -}}
{{- $name := printf "%s.%s" .version .group -}}
{{- $existing := lookup "apiregistration.k8s.io/v1" "APIService" "" $name -}}
{{- if and $existing $existing.spec $existing.spec.service -}}
{{- $svc := $existing.spec.service -}}
{{- if not (and (eq $svc.name (include "tokenscaler.fullname" $)) (eq $svc.namespace $.Release.Namespace)) -}}
{{- fail (printf "APIService %s already exists and routes to Service %s/%s (another metrics adapter, e.g. KEDA or prometheus-adapter). A cluster has one backend per metrics group. Set metricsApi.mode=keda to feed KEDA's metrics-api trigger instead%s, or remove that adapter's APIService first." $name $svc.namespace $svc.name (ternary ", or metricsApi.mode=custom to serve custom.metrics.k8s.io" "" (eq $mode "external"))) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
