package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	k8sjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/veneur-lite/veneur-lite/config"
	"github.com/veneur-lite/veneur-lite/forward"
	"github.com/veneur-lite/veneur-lite/sinks/datadog"
)

const (
	manifestDir = "kubernetes"
	namespace   = "veneur"
	// clusterDomain is Kubernetes' default cluster domain, which the
	// locals' forward_address is written for.
	clusterDomain = "cluster.local"
	// bytesPerSeries is the project's round figure for the memory of one
	// live series (config.LocalMaxSeries' comment); the memory limits are
	// sized from it.
	bytesPerSeries = 1 << 10
	// heldBytes is what a local holds for the global tier while it is
	// unreachable (forward.Config.MaxHeldBytes' default).
	heldBytes = 64 << 20
	// shutdownSeconds bounds a graceful stop (docs/configuration.md,
	// flush_on_shutdown).
	shutdownSeconds = 10
)

// newObject maps apiVersion/kind to the Go type a document decodes into.
// A kind missing here fails the test: add it with its type.
var newObject = map[string]func() any{
	"v1/Namespace":                       func() any { return &corev1.Namespace{} },
	"v1/ConfigMap":                       func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                          func() any { return &corev1.Secret{} },
	"v1/Service":                         func() any { return &corev1.Service{} },
	"apps/v1/DaemonSet":                  func() any { return &appsv1.DaemonSet{} },
	"apps/v1/StatefulSet":                func() any { return &appsv1.StatefulSet{} },
	"policy/v1/PodDisruptionBudget":      func() any { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1/NetworkPolicy": func() any { return &networkingv1.NetworkPolicy{} },
}

// kustomization is the part of kustomize's Kustomization these files use;
// it is decoded strictly like the manifests, so a key outside it fails.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
	} `json:"images,omitempty"`
}

// document is one decoded YAML document of a manifest file.
type document struct {
	file  string
	index int // 0-based, among the file's non-empty documents
	obj   any // *corev1.Service, *appsv1.DaemonSet, …
}

func (d document) String() string { return fmt.Sprintf("%s#%d", d.file, d.index) }

// manifests is every manifest under kubernetes/, decoded.
type manifests struct {
	docs        []document
	kustomize   kustomization
	namespaces  map[string]*corev1.Namespace
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret // from *.example.yaml
	services    map[string]*corev1.Service
	daemonSets  map[string]*appsv1.DaemonSet
	statefulSet map[string]*appsv1.StatefulSet
	pdbs        map[string]*policyv1.PodDisruptionBudget
	netpols     map[string]*networkingv1.NetworkPolicy
}

var (
	loadOnce   sync.Once
	loaded     *manifests
	loadErrors []string
)

// load decodes every file once; a test that needs them fails on the
// decoding errors (TestManifestsDecodeStrictly reports them all).
func load(t *testing.T) *manifests {
	t.Helper()
	loadOnce.Do(func() { loaded, loadErrors = loadManifests() })
	if len(loadErrors) > 0 {
		t.Fatalf("manifests do not decode:\n%s", strings.Join(loadErrors, "\n"))
	}
	return loaded
}

func loadManifests() (*manifests, []string) {
	m := &manifests{
		namespaces:  map[string]*corev1.Namespace{},
		configMaps:  map[string]*corev1.ConfigMap{},
		secrets:     map[string]*corev1.Secret{},
		services:    map[string]*corev1.Service{},
		daemonSets:  map[string]*appsv1.DaemonSet{},
		statefulSet: map[string]*appsv1.StatefulSet{},
		pdbs:        map[string]*policyv1.PodDisruptionBudget{},
		netpols:     map[string]*networkingv1.NetworkPolicy{},
	}
	var errs []string
	files, err := filepath.Glob(filepath.Join(manifestDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		return nil, []string{fmt.Sprintf("no manifests in %s (%v)", manifestDir, err)}
	}
	if more, _ := filepath.Glob(filepath.Join(manifestDir, "*.yml")); len(more) > 0 {
		errs = append(errs, fmt.Sprintf("%v: name manifests *.yaml, as kustomization.yaml lists them", more))
	}
	seen := map[string]string{} // kind/name → where
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		base := filepath.Base(file)
		for i, doc := range splitDocuments(data) {
			where := fmt.Sprintf("%s#%d", base, i)
			if base == "kustomization.yaml" {
				if i > 0 {
					errs = append(errs, where+": kustomization.yaml holds one document")
				} else if err := decodeStrict(doc, &m.kustomize); err != nil {
					errs = append(errs, fmt.Sprintf("%s: %v", where, err))
				}
				continue
			}
			obj, err := decodeManifest(doc)
			if err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", where, err))
				continue
			}
			meta := objectMeta(obj)
			kind := fmt.Sprintf("%T", obj)
			key := kind + "/" + meta.Name
			if prev, dup := seen[key]; dup {
				errs = append(errs, fmt.Sprintf("%s: %s %q is also defined in %s", where, kind, meta.Name, prev))
			}
			seen[key] = where
			m.docs = append(m.docs, document{file: base, index: i, obj: obj})
			switch o := obj.(type) {
			case *corev1.Namespace:
				m.namespaces[o.Name] = o
			case *corev1.ConfigMap:
				m.configMaps[o.Name] = o
			case *corev1.Secret:
				if !strings.HasSuffix(base, ".example.yaml") {
					errs = append(errs, where+": a Secret belongs in a *.example.yaml file, which kustomization.yaml does not apply")
				}
				m.secrets[o.Name] = o
			case *corev1.Service:
				m.services[o.Name] = o
			case *appsv1.DaemonSet:
				m.daemonSets[o.Name] = o
			case *appsv1.StatefulSet:
				m.statefulSet[o.Name] = o
			case *policyv1.PodDisruptionBudget:
				m.pdbs[o.Name] = o
			case *networkingv1.NetworkPolicy:
				m.netpols[o.Name] = o
			}
		}
	}
	return m, errs
}

// splitDocuments splits a YAML stream at its "---" lines and drops the
// documents that hold only comments and blank lines.
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	flush := func() {
		if hasContent(cur.Bytes()) {
			docs = append(docs, bytes.Clone(cur.Bytes()))
		}
		cur.Reset()
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimRight(line, " \t") == "---" {
			flush()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	flush()
	return docs
}

func hasContent(doc []byte) bool {
	for line := range strings.SplitSeq(string(doc), "\n") {
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
			return true
		}
	}
	return false
}

// decodeStrict decodes one YAML document into v the way the API server
// decodes a request body in strict mode: YAML to JSON refusing duplicate
// keys, then case-sensitive JSON refusing unknown and duplicate fields.
// encoding/json's DisallowUnknownFields alone would let a misspelt case
// through (hostport for hostPort), since it matches names case-insensitively.
func decodeStrict(doc []byte, v any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return fmt.Errorf("yaml: %w", err)
	}
	strictErrs, err := k8sjson.UnmarshalStrict(j, v)
	if err != nil {
		return err
	}
	if len(strictErrs) > 0 {
		msgs := make([]string, len(strictErrs))
		for i, e := range strictErrs {
			msgs[i] = e.Error()
		}
		return fmt.Errorf("strict decoding: %s", strings.Join(msgs, "; "))
	}
	return nil
}

// decodeManifest reads a document's apiVersion and kind, and decodes it
// strictly into the matching API type.
func decodeManifest(doc []byte) (any, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, fmt.Errorf("apiVersion/kind: %w", err)
	}
	if tm.APIVersion == "" || tm.Kind == "" {
		return nil, fmt.Errorf("apiVersion %q, kind %q: both are required", tm.APIVersion, tm.Kind)
	}
	newObj := newObject[tm.APIVersion+"/"+tm.Kind]
	if newObj == nil {
		return nil, fmt.Errorf("%s %s: no Go type for this kind in deploy_test.go's newObject", tm.APIVersion, tm.Kind)
	}
	obj := newObj()
	if err := decodeStrict(doc, obj); err != nil {
		return nil, fmt.Errorf("%s %s: %w", tm.APIVersion, tm.Kind, err)
	}
	return obj, nil
}

func objectMeta(obj any) *metav1.ObjectMeta {
	switch o := obj.(type) {
	case *corev1.Namespace:
		return &o.ObjectMeta
	case *corev1.ConfigMap:
		return &o.ObjectMeta
	case *corev1.Secret:
		return &o.ObjectMeta
	case *corev1.Service:
		return &o.ObjectMeta
	case *appsv1.DaemonSet:
		return &o.ObjectMeta
	case *appsv1.StatefulSet:
		return &o.ObjectMeta
	case *policyv1.PodDisruptionBudget:
		return &o.ObjectMeta
	case *networkingv1.NetworkPolicy:
		return &o.ObjectMeta
	}
	panic(fmt.Sprintf("objectMeta: %T", obj))
}

// TestManifestsDecodeStrictly decodes every document of every manifest
// into its API type, refusing unknown, misspelt and duplicate fields, and
// checks the names and namespaces.
func TestManifestsDecodeStrictly(t *testing.T) {
	m := load(t)
	if len(m.docs) == 0 {
		t.Fatal("no manifests")
	}
	for _, d := range m.docs {
		meta := objectMeta(d.obj)
		if errs := validation.IsDNS1123Subdomain(meta.Name); len(errs) > 0 {
			t.Errorf("%s: name %q: %v", d, meta.Name, errs)
		}
		if _, isNS := d.obj.(*corev1.Namespace); isNS {
			if meta.Namespace != "" {
				t.Errorf("%s: a Namespace has no namespace", d)
			}
			continue
		}
		// Explicit, not left to kubectl's context or kustomize: the
		// locals' forward_address names the namespace.
		if meta.Namespace != namespace {
			t.Errorf("%s: %T %s: namespace %q, want %q", d, d.obj, meta.Name, meta.Namespace, namespace)
		}
	}
	if m.namespaces[namespace] == nil {
		t.Errorf("no Namespace %q", namespace)
	}
}

// TestStrictDecoderRefuses makes sure the decoder the other tests rely on
// does refuse what the API server would: a misspelt field (in case
// only, too), an unknown one, a duplicate key and an unknown kind.
func TestStrictDecoderRefuses(t *testing.T) {
	const good = `apiVersion: v1
kind: Service
metadata:
  name: x
spec:
  clusterIP: None
  ports:
    - port: 8127
`
	if _, err := decodeManifest([]byte(good)); err != nil {
		t.Fatalf("good document refused: %v", err)
	}
	for name, bad := range map[string]string{
		"misspelt case": strings.Replace(good, "clusterIP:", "clusterIp:", 1),
		"unknown field": strings.Replace(good, "  clusterIP: None\n", "  clusterIP: None\n  headless: true\n", 1),
		"nested field":  strings.Replace(good, "- port: 8127", "- port: 8127\n      hostPort: 8127", 1),
		"duplicate key": strings.Replace(good, "  clusterIP: None\n", "  clusterIP: None\n  clusterIP: 10.0.0.1\n", 1),
		"wrong type":    strings.Replace(good, "port: 8127", "port: [8127]", 1),
		"unknown kind":  strings.Replace(good, "kind: Service", "kind: Servce", 1),
		"no kind":       strings.Replace(good, "kind: Service\n", "", 1),
	} {
		if _, err := decodeManifest([]byte(bad)); err == nil {
			t.Errorf("%s: accepted:\n%s", name, bad)
		}
	}
	if got := len(splitDocuments([]byte("# c\n---\na: 1\n---\n\n---\nb: 2\n"))); got != 2 {
		t.Errorf("splitDocuments: %d documents, want 2", got)
	}
}

// TestKustomizationListsEveryManifest: kubectl apply -k applies every
// manifest but the Secret examples, and nothing else.
func TestKustomizationListsEveryManifest(t *testing.T) {
	m := load(t)
	k := m.kustomize
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("kustomization.yaml: apiVersion %q kind %q", k.APIVersion, k.Kind)
	}
	var want []string
	for _, d := range m.docs {
		if !strings.HasSuffix(d.file, ".example.yaml") && !slices.Contains(want, d.file) {
			want = append(want, d.file)
		}
	}
	got := slices.Clone(k.Resources)
	sort.Strings(want)
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("kustomization.yaml resources = %v, want every manifest but *.example.yaml: %v", got, want)
	}
	// The Namespace first, so that a plain kubectl apply -f of the list
	// in order works too.
	if len(k.Resources) == 0 || k.Resources[0] != "namespace.yaml" {
		t.Errorf("kustomization.yaml resources start with %v, want namespace.yaml first", k.Resources)
	}
	for _, img := range k.Images {
		if img.Name != "veneur-lite" {
			t.Errorf("kustomization.yaml images: %q is not the image the manifests use", img.Name)
		}
	}
}

// workload is a DaemonSet or StatefulSet with what the checks need.
type workload struct {
	kind     string
	name     string
	selector *metav1.LabelSelector
	template *corev1.PodTemplateSpec
	// podName is a name a pod of it gets, for fieldRef metadata.name.
	podName string
	local   bool // forwards to the globals
}

func (w workload) String() string { return w.kind + "/" + w.name }

func workloads(t *testing.T, m *manifests) []workload {
	t.Helper()
	var ws []workload
	for _, ds := range m.daemonSets {
		ws = append(ws, workload{kind: "DaemonSet", name: ds.Name, selector: ds.Spec.Selector,
			template: &ds.Spec.Template, podName: ds.Name + "-x7k2p", local: true})
	}
	for _, ss := range m.statefulSet {
		ws = append(ws, workload{kind: "StatefulSet", name: ss.Name, selector: ss.Spec.Selector,
			template: &ss.Spec.Template, podName: ss.Name + "-0"})
	}
	sort.Slice(ws, func(i, j int) bool { return ws[i].String() < ws[j].String() })
	if len(ws) != 2 {
		t.Fatalf("workloads %v: want one DaemonSet (locals) and one StatefulSet (globals)", ws)
	}
	return ws
}

func (m *manifests) local(t *testing.T) workload {
	t.Helper()
	for _, w := range workloads(t, m) {
		if w.local {
			return w
		}
	}
	t.Fatal("no DaemonSet")
	return workload{}
}

func (m *manifests) global(t *testing.T) workload {
	t.Helper()
	for _, w := range workloads(t, m) {
		if !w.local {
			return w
		}
	}
	t.Fatal("no StatefulSet")
	return workload{}
}

// selects reports whether sel matches the labels ls.
func selects(t *testing.T, sel *metav1.LabelSelector, ls map[string]string) bool {
	t.Helper()
	if sel == nil {
		t.Fatal("nil label selector")
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("label selector %v: %v", sel, err)
	}
	if s.Empty() {
		t.Fatalf("label selector %v selects everything", sel)
	}
	return s.Matches(labels.Set(ls))
}

func selectsMap(sel, ls map[string]string) bool {
	return len(sel) > 0 && labels.SelectorFromSet(sel).Matches(labels.Set(ls))
}

// container returns the workload's one container.
func (w workload) container(t *testing.T) *corev1.Container {
	t.Helper()
	cs := w.template.Spec.Containers
	if len(cs) != 1 || len(w.template.Spec.InitContainers) > 0 {
		t.Fatalf("%s: %d containers and %d init containers, want one container", w, len(cs), len(w.template.Spec.InitContainers))
	}
	return &cs[0]
}

// port returns the container port named name.
func port(t *testing.T, c *corev1.Container, name string) corev1.ContainerPort {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("container %s has no port named %q", c.Name, name)
	return corev1.ContainerPort{}
}

// resolvePort resolves a probe's or Service's target port against the
// container's ports.
func resolvePort(t *testing.T, c *corev1.Container, p intstr.IntOrString) int32 {
	t.Helper()
	if p.Type == intstr.Int {
		return p.IntVal
	}
	return port(t, c, p.StrVal).ContainerPort
}

// TestWorkloadsAreWellFormed: selectors match their pods, ports are named
// validly, the image is one pinned tag.
func TestWorkloadsAreWellFormed(t *testing.T) {
	m := load(t)
	image := ""
	for _, w := range workloads(t, m) {
		if !selects(t, w.selector, w.template.Labels) {
			t.Errorf("%s: selector %v does not match its pod labels %v", w, w.selector.MatchLabels, w.template.Labels)
		}
		c := w.container(t)
		if image == "" {
			image = c.Image
		}
		if c.Image != image {
			t.Errorf("%s: image %q, the other workload runs %q", w, c.Image, image)
		}
		if name, tag, ok := strings.Cut(c.Image, ":"); !ok || tag == "" || tag == "latest" || name != "veneur-lite" {
			t.Errorf("%s: image %q: want veneur-lite:<tag> (kustomization.yaml's images sets the registry)", w, c.Image)
		}
		for _, p := range c.Ports {
			if errs := validation.IsValidPortName(p.Name); len(errs) > 0 {
				t.Errorf("%s: port name %q: %v", w, p.Name, errs)
			}
		}
		for _, e := range c.Env {
			if errs := validation.IsEnvVarName(e.Name); len(errs) > 0 {
				t.Errorf("%s: env %q: %v", w, e.Name, errs)
			}
		}
		if len(c.Command) > 0 || len(c.Args) > 0 {
			t.Errorf("%s: command %v args %v: leave both to the image's ENTRYPOINT, which names the config file", w, c.Command, c.Args)
		}
	}
	// The two roles' selectors must not overlap: the Service, PDB and
	// NetworkPolicy of the globals must never take in a local.
	l, g := m.local(t), m.global(t)
	if selects(t, l.selector, g.template.Labels) || selects(t, g.selector, l.template.Labels) {
		t.Error("the DaemonSet's and the StatefulSet's selectors overlap")
	}
}

// TestLocalDaemonSet: DogStatsD on the node's UDP 8125 through a hostPort
// in the pod's own network, the hostname from the node's name.
func TestLocalDaemonSet(t *testing.T) {
	m := load(t)
	w := m.local(t)
	c := w.container(t)
	var found bool
	for _, p := range c.Ports {
		if p.Protocol == corev1.ProtocolUDP && p.ContainerPort == 8125 && p.HostPort == 8125 {
			found = true
		}
	}
	if !found {
		t.Errorf("%s: ports %+v: want containerPort 8125/UDP with hostPort 8125", w, c.Ports)
	}
	spec := w.template.Spec
	if spec.HostNetwork {
		t.Errorf("%s: hostNetwork would put http_address (0.0.0.0:8127) on the node", w)
	}
	if env := envVar(c, "VENEUR_HOSTNAME"); env == nil || env.ValueFrom == nil || env.ValueFrom.FieldRef == nil ||
		env.ValueFrom.FieldRef.FieldPath != "spec.nodeName" {
		t.Errorf("%s: VENEUR_HOSTNAME must come from fieldRef spec.nodeName, got %+v", w, env)
	}
	ds := m.daemonSets[w.name]
	if u := ds.Spec.UpdateStrategy.RollingUpdate; u == nil || u.MaxSurge == nil || u.MaxSurge.String() != "0" {
		t.Errorf("%s: a hostPort pod cannot surge (two pods, one host port): want rollingUpdate.maxSurge 0", w)
	}
	tolerateAll := slices.ContainsFunc(spec.Tolerations, func(tol corev1.Toleration) bool {
		return tol.Operator == corev1.TolerationOpExists && tol.Key == "" && tol.Effect == ""
	})
	if !tolerateAll {
		t.Errorf("%s: tolerations %v: want one that tolerates every taint, to run on every node", w, spec.Tolerations)
	}
}

func int64String(p *int64) string {
	if p == nil {
		return "unset"
	}
	return strconv.FormatInt(*p, 10)
}

func envVar(c *corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

// TestGlobalsBehindHeadlessService: a headless Service that lists only
// ready globals, selects exactly the StatefulSet's pods, and serves their
// http port; the StatefulSet is governed by it.
func TestGlobalsBehindHeadlessService(t *testing.T) {
	m := load(t)
	g := m.global(t)
	ss := m.statefulSet[g.name]
	svc := m.services[ss.Spec.ServiceName]
	if svc == nil {
		t.Fatalf("%s: serviceName %q is not a Service here", g, ss.Spec.ServiceName)
	}
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("Service %s: clusterIP %q, want None (headless)", svc.Name, svc.Spec.ClusterIP)
	}
	if svc.Spec.PublishNotReadyAddresses {
		t.Errorf("Service %s: publishNotReadyAddresses would send series to globals that are not ready", svc.Name)
	}
	if errs := validation.IsDNS1035Label(svc.Name); len(errs) > 0 {
		t.Errorf("Service name %q: %v", svc.Name, errs)
	}
	if !selectsMap(svc.Spec.Selector, g.template.Labels) {
		t.Errorf("Service %s: selector %v does not select the StatefulSet's pods %v", svc.Name, svc.Spec.Selector, g.template.Labels)
	}
	if selectsMap(svc.Spec.Selector, m.local(t).template.Labels) {
		t.Errorf("Service %s: selector %v also selects the locals", svc.Name, svc.Spec.Selector)
	}
	if ss.Spec.Replicas == nil || *ss.Spec.Replicas < 2 {
		t.Errorf("%s: replicas %v, want at least 2", g, ss.Spec.Replicas)
	}
	c := g.container(t)
	httpPort := port(t, c, "http").ContainerPort
	if len(svc.Spec.Ports) != 1 {
		t.Fatalf("Service %s: ports %+v, want the one http port", svc.Name, svc.Spec.Ports)
	}
	sp := svc.Spec.Ports[0]
	// Headless: DNS gives pod IPs, so the locals connect to the target
	// port itself; port and targetPort must be the same number.
	if target := resolvePort(t, c, sp.TargetPort); target != httpPort || sp.Port != httpPort {
		t.Errorf("Service %s: port %d → %s, want %d → the container's http port %d", svc.Name, sp.Port, sp.TargetPort.String(), httpPort, httpPort)
	}
}

// TestPDBAndNetworkPolicy: the PDB covers the globals and leaves all but
// one up; the NetworkPolicy lets exactly the locals reach the http port.
func TestPDBAndNetworkPolicy(t *testing.T) {
	m := load(t)
	g, l := m.global(t), m.local(t)
	replicas := *m.statefulSet[g.name].Spec.Replicas
	if len(m.pdbs) != 1 {
		t.Fatalf("%d PodDisruptionBudgets, want one for the globals", len(m.pdbs))
	}
	for _, pdb := range m.pdbs {
		if !selects(t, pdb.Spec.Selector, g.template.Labels) || selects(t, pdb.Spec.Selector, l.template.Labels) {
			t.Errorf("PDB %s: selector must take the globals and only them", pdb.Name)
		}
		switch {
		case pdb.Spec.MaxUnavailable != nil:
			if v, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MaxUnavailable, int(replicas), true); err != nil || v < 1 || v >= int(replicas) {
				t.Errorf("PDB %s: maxUnavailable %s of %d replicas (%d, %v)", pdb.Name, pdb.Spec.MaxUnavailable.String(), replicas, v, err)
			}
		case pdb.Spec.MinAvailable != nil:
			if v, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MinAvailable, int(replicas), true); err != nil || v < 1 || v >= int(replicas) {
				t.Errorf("PDB %s: minAvailable %s of %d replicas (%d, %v)", pdb.Name, pdb.Spec.MinAvailable.String(), replicas, v, err)
			}
		default:
			t.Errorf("PDB %s: neither maxUnavailable nor minAvailable", pdb.Name)
		}
	}
	httpPort := port(t, g.container(t), "http").ContainerPort
	for _, np := range m.netpols {
		if !selects(t, &np.Spec.PodSelector, g.template.Labels) || selects(t, &np.Spec.PodSelector, l.template.Labels) {
			t.Errorf("NetworkPolicy %s: podSelector must take the globals and only them", np.Name)
		}
		if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
			t.Errorf("NetworkPolicy %s: policyTypes %v lacks Ingress", np.Name, np.Spec.PolicyTypes)
		}
		localsReachHTTP := false
		for _, rule := range np.Spec.Ingress {
			for _, peer := range rule.From {
				if peer.IPBlock != nil || peer.NamespaceSelector != nil || peer.PodSelector == nil {
					t.Errorf("NetworkPolicy %s: peer %+v: only the locals' pods, in this namespace", np.Name, peer)
					continue
				}
				if !selects(t, peer.PodSelector, l.template.Labels) || selects(t, peer.PodSelector, g.template.Labels) {
					t.Errorf("NetworkPolicy %s: peer %v must select the locals and only them", np.Name, peer.PodSelector.MatchLabels)
				}
			}
			for _, p := range rule.Ports {
				if p.Port != nil && p.Port.IntValue() == int(httpPort) && (p.Protocol == nil || *p.Protocol == corev1.ProtocolTCP) && len(rule.From) > 0 {
					localsReachHTTP = true
				}
			}
		}
		if !localsReachHTTP {
			t.Errorf("NetworkPolicy %s: the locals cannot reach the globals' port %d/TCP", np.Name, httpPort)
		}
	}
}

// TestPodsAreHardenedAndProbed: every pod runs as non-root with nothing to
// escalate to, outlives the 10 s shutdown, is probed on /healthcheck at
// its http port, and has requests and limits.
func TestPodsAreHardenedAndProbed(t *testing.T) {
	m := load(t)
	for _, w := range workloads(t, m) {
		spec := w.template.Spec
		psc := spec.SecurityContext
		if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
			t.Errorf("%s: pod securityContext %+v: want runAsNonRoot and a non-zero runAsUser", w, psc)
		}
		if psc != nil && (psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault) {
			t.Errorf("%s: want seccompProfile RuntimeDefault", w)
		}
		if spec.HostPID || spec.HostIPC || spec.HostNetwork {
			t.Errorf("%s: shares a host namespace", w)
		}
		if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
			t.Errorf("%s: automountServiceAccountToken: veneur-lite never calls the API, mount no token", w)
		}
		if g := spec.TerminationGracePeriodSeconds; g == nil || *g <= shutdownSeconds {
			t.Errorf("%s: terminationGracePeriodSeconds %s, want more than the %d s a graceful stop takes", w, int64String(g), shutdownSeconds)
		}
		c := w.container(t)
		sc := c.SecurityContext
		if sc == nil {
			t.Errorf("%s: container has no securityContext", w)
		} else {
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s: want allowPrivilegeEscalation false", w)
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("%s: want readOnlyRootFilesystem true", w)
			}
			if sc.Privileged != nil && *sc.Privileged {
				t.Errorf("%s: privileged", w)
			}
			if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
				t.Errorf("%s: capabilities %+v: want drop [ALL] and nothing added", w, sc.Capabilities)
			}
			if sc.RunAsUser != nil && *sc.RunAsUser == 0 || sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot {
				t.Errorf("%s: the container's securityContext undoes the pod's non-root user", w)
			}
		}
		httpPort := port(t, c, "http")
		for name, p := range map[string]*corev1.Probe{"readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe} {
			if p == nil || p.HTTPGet == nil {
				t.Errorf("%s: %s: want an httpGet probe", w, name)
				continue
			}
			if p.HTTPGet.Path != "/healthcheck" || resolvePort(t, c, p.HTTPGet.Port) != httpPort.ContainerPort {
				t.Errorf("%s: %s: GET %s on port %s, want /healthcheck on the http port %d", w, name, p.HTTPGet.Path, p.HTTPGet.Port.String(), httpPort.ContainerPort)
			}
			if p.TimeoutSeconds < 1 || p.PeriodSeconds < 1 || p.FailureThreshold < 1 {
				t.Errorf("%s: %s: timeout %d period %d failureThreshold %d", w, name, p.TimeoutSeconds, p.PeriodSeconds, p.FailureThreshold)
			}
		}
		res := c.Resources
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := res.Requests[r]
			lim, hasLim := res.Limits[r]
			if !hasReq || !hasLim {
				t.Errorf("%s: %s request %v limit %v: want both", w, r, hasReq, hasLim)
				continue
			}
			if req.Cmp(lim) > 0 {
				t.Errorf("%s: %s request %s above its limit %s", w, r, req.String(), lim.String())
			}
		}
	}
}

// fieldValues are the values the kubelet would give a pod's fieldRefs.
func fieldValues(w workload) map[string]string {
	return map[string]string{
		"spec.nodeName":      "node-a",
		"metadata.name":      w.podName,
		"metadata.namespace": namespace,
		"status.podIP":       "10.244.1.7",
		"status.hostIP":      "10.0.0.5",
	}
}

// podEnv is the environment the kubelet would start w's container with:
// fieldRefs and secretKeyRefs resolved (Secrets from secrets.example.yaml),
// $(VAR) references to earlier variables substituted.
func podEnv(t *testing.T, m *manifests, w workload) (env []string, vars map[string]string) {
	t.Helper()
	c := w.container(t)
	if len(c.EnvFrom) > 0 {
		t.Errorf("%s: envFrom: list each variable, so that this test sees it", w)
	}
	fields := fieldValues(w)
	vars = map[string]string{}
	for _, e := range c.Env {
		var v string
		switch {
		case e.ValueFrom == nil:
			v = expand(e.Value, vars)
		case e.ValueFrom.FieldRef != nil:
			var ok bool
			if v, ok = fields[e.ValueFrom.FieldRef.FieldPath]; !ok {
				t.Errorf("%s: env %s: fieldRef %q is not one this test knows", w, e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			if ref.Optional != nil && *ref.Optional {
				t.Errorf("%s: env %s: an optional Secret would start the pod without it", w, e.Name)
			}
			s := m.secrets[ref.Name]
			if s == nil {
				t.Errorf("%s: env %s: Secret %q is not in secrets.example.yaml", w, e.Name, ref.Name)
				continue
			}
			var ok bool
			if v, ok = s.StringData[ref.Key]; !ok {
				t.Errorf("%s: env %s: Secret %q has no key %q in secrets.example.yaml", w, e.Name, ref.Name, ref.Key)
			}
		default:
			t.Errorf("%s: env %s: valueFrom %+v is not one this test resolves", w, e.Name, e.ValueFrom)
			continue
		}
		vars[e.Name] = v
		env = append(env, e.Name+"="+v)
	}
	return env, vars
}

// expand substitutes $(NAME) with vars[NAME] as the kubelet does: a name
// not (yet) defined is left as written, and $$ is a literal $.
func expand(s string, vars map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			ref := s[i : i+3+end]
			if v, ok := vars[s[i+2:i+2+end]]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(ref)
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "x", "B": "y"}
	for in, want := range map[string]string{
		"$(A)":          "x",
		"k: $(A)-$(B)":  "k: x-y",
		"$(C)":          "$(C)",
		"$$(A)":         "$(A)",
		"$":             "$",
		"a$b":           "a$b",
		"$(A":           "$(A",
		`{key: "$(A)"}`: `{key: "x"}`,
	} {
		if got := expand(in, vars); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
}

// configFile finds the config file the image's ENTRYPOINT reads (-f) in
// the ConfigMap mounted there, and returns the ConfigMap and the file.
func configFile(t *testing.T, m *manifests, w workload, configPath string) (*corev1.ConfigMap, string) {
	t.Helper()
	c := w.container(t)
	for _, vm := range c.VolumeMounts {
		rel, err := filepath.Rel(vm.MountPath, configPath)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue
		}
		if !vm.ReadOnly {
			t.Errorf("%s: mount %s: want readOnly", w, vm.MountPath)
		}
		for _, v := range w.template.Spec.Volumes {
			if v.Name != vm.Name {
				continue
			}
			if v.ConfigMap == nil {
				t.Fatalf("%s: volume %s at %s is not a ConfigMap", w, v.Name, vm.MountPath)
			}
			key := rel
			if vm.SubPath != "" {
				t.Errorf("%s: mount %s uses subPath, which never sees a ConfigMap update", w, vm.MountPath)
			}
			for _, it := range v.ConfigMap.Items {
				if it.Path == rel {
					key = it.Key
				}
			}
			cm := m.configMaps[v.ConfigMap.Name]
			if cm == nil {
				t.Fatalf("%s: volume %s: ConfigMap %q is not here", w, v.Name, v.ConfigMap.Name)
			}
			data, ok := cm.Data[key]
			if !ok {
				t.Fatalf("%s: ConfigMap %s has no key %q for %s", w, cm.Name, key, configPath)
			}
			if errs := validation.IsConfigMapKey(key); len(errs) > 0 {
				t.Errorf("ConfigMap %s key %q: %v", cm.Name, key, errs)
			}
			return cm, data
		}
	}
	t.Fatalf("%s: nothing is mounted at %s, the image's config path", w, configPath)
	return nil, ""
}

// loadedConfig is one workload's configuration as veneur-lite would load
// it, with the container's environment.
type loadedConfig struct {
	cfg  config.Config
	vars map[string]string
}

// loadConfig loads w's ConfigMap file with config.Load, in the
// environment the manifests give the container, and decodes and validates
// every sink as the binary does at startup.
func loadConfig(t *testing.T, m *manifests, w workload) loadedConfig {
	t.Helper()
	configPath := dockerfile(t).configPath
	_, data := configFile(t, m, w, configPath)
	file := filepath.Join(t.TempDir(), path.Base(configPath))
	if err := os.WriteFile(file, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	env, vars := podEnv(t, m, w)
	for _, kv := range env {
		if name, v, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "VENEUR_") && strings.Contains(v, "$(") {
			t.Errorf("%s: %s still holds an unresolved $(…) reference: %s", w, name, v)
		}
	}
	cfg, warnings, err := config.Load(file, env)
	for _, w2 := range warnings {
		t.Errorf("%s: config warning: %s", w, w2)
	}
	if err != nil {
		t.Fatalf("%s: config.Load: %v", w, err)
	}
	decoded, err := cfg.DecodeSinks()
	if err != nil {
		t.Errorf("%s: %v", w, err)
	}
	for _, s := range decoded {
		if c, ok := s.Config.(datadog.Config); ok && c.APIKey != vars["DD_API_KEY"] {
			t.Errorf("%s: sink %s: api_key is not the Secret's value", w, s.Name)
		}
	}
	return loadedConfig{cfg: cfg, vars: vars}
}

// TestConfigMapsLoad loads both roles' config files as veneur-lite does
// and checks that they fit the pods they run in.
func TestConfigMapsLoad(t *testing.T) {
	m := load(t)
	var intervals []string
	for _, w := range workloads(t, m) {
		t.Run(w.kind, func(t *testing.T) {
			lc := loadConfig(t, m, w)
			cfg := lc.cfg
			c := w.container(t)
			intervals = append(intervals, cfg.Interval.D().String())

			// The environment reached the config.
			want := fieldValues(w)["metadata.name"]
			if w.local {
				want = fieldValues(w)["spec.nodeName"]
			}
			if cfg.Hostname != want {
				t.Errorf("hostname %q, want %q from VENEUR_HOSTNAME", cfg.Hostname, want)
			}
			if cfg.ImportToken == "" || cfg.ImportToken != lc.vars["VENEUR_IMPORT_TOKEN"] {
				t.Error("import_token: want it from VENEUR_IMPORT_TOKEN (both roles: locals send it, globals require it)")
			}
			if !slices.ContainsFunc(cfg.MetricSinks, func(s config.SinkConfig) bool { return s.Kind != "console" }) {
				t.Errorf("metric_sinks %v: want a real sink, not only the console", cfg.MetricSinks)
			}
			if (len(cfg.ForwardAddress) > 0) != w.local {
				t.Errorf("forward_address %v: the locals forward, the globals do not", cfg.ForwardAddress)
			}

			// http_address: reachable by the kubelet on the container's
			// http port, and therefore guarded.
			host, p, err := net.SplitHostPort(cfg.HTTPAddress)
			if err != nil {
				t.Fatal(err)
			}
			if config.IsLoopback(cfg.HTTPAddress) || !unspecified(host) {
				t.Errorf("http_address %s: the kubelet's probes come to the pod IP; bind 0.0.0.0 (or [::])", cfg.HTTPAddress)
			}
			httpPort := port(t, c, "http").ContainerPort
			if p != strconv.Itoa(int(httpPort)) {
				t.Errorf("http_address %s: port is not the container's http port %d", cfg.HTTPAddress, httpPort)
			}
			if cfg.EnableProfiling {
				t.Error("enable_profiling on a pod-network address")
			}
			scheme := corev1.URISchemeHTTP
			if cfg.TLSCertificate != "" {
				scheme = corev1.URISchemeHTTPS
			}
			for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
				if p == nil || p.HTTPGet == nil {
					continue // TestPodsAreHardenedAndProbed reports it
				}
				got := p.HTTPGet.Scheme
				if got == "" {
					got = corev1.URISchemeHTTP // the kubelet's default
				}
				if got != scheme {
					t.Errorf("probe scheme %s, but http_address speaks %s", got, scheme)
				}
			}

			// DogStatsD: the locals listen where the hostPort delivers.
			for _, la := range cfg.StatsdListenAddresses {
				if la.Network == "unixgram" {
					// Clients on the node reach the socket through a
					// hostPath directory that both mount.
					if !w.local || !socketDirMounted(w, la.Address) {
						t.Errorf("listener %s: want a writable hostPath volume mounted at %s on a local (deploy/README.md)", la, path.Dir(la.Address))
					}
					continue
				}
				lh, lp, _ := net.SplitHostPort(la.Address)
				if !w.local {
					if !config.IsLoopback(la.Address) {
						t.Errorf("listener %s: a global takes no DogStatsD from outside the pod", la)
					}
					continue
				}
				if !unspecified(lh) {
					t.Errorf("listener %s: hostPort traffic arrives at the pod IP; bind 0.0.0.0 (or [::])", la)
				}
				proto := corev1.ProtocolUDP
				if strings.HasPrefix(la.Network, "tcp") {
					proto = corev1.ProtocolTCP
				}
				if !slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool {
					return strconv.Itoa(int(cp.ContainerPort)) == lp && cp.Protocol == proto && cp.HostPort != 0
				}) {
					t.Errorf("listener %s: no container port %s/%s with a hostPort", la, lp, proto)
				}
			}

			// Threads: the defaults follow the node's CPUs, not the limit.
			cpu := c.Resources.Limits[corev1.ResourceCPU]
			cores := int(math.Ceil(float64(cpu.MilliValue()) / 1000))
			if cfg.NumReaders > cores || cfg.NumWorkers > cores {
				t.Errorf("num_readers %d, num_workers %d: more than the %d cores of the CPU limit", cfg.NumReaders, cfg.NumWorkers, cores)
			}

			// Memory: the limit holds the series bound at ~1 KiB per
			// series twice over (the live interval and what a flush builds
			// from it), plus, on a local, the sketches held for the
			// globals; GOMEMLIMIT sits just under the limit.
			if cfg.MaxSeries <= 0 {
				t.Fatalf("max_series %d: unbounded, the memory limit cannot be sized", cfg.MaxSeries)
			}
			need, why := int64(2*cfg.MaxSeries*bytesPerSeries), fmt.Sprintf("2 x max_series %d x 1 KiB", cfg.MaxSeries)
			if w.local {
				need += heldBytes
				why += " + 64 MiB held for the globals"
			}
			limit := c.Resources.Limits[corev1.ResourceMemory]
			if limit.Value() < need {
				t.Errorf("memory limit %s < %d MiB = %s", limit.String(), need>>20, why)
			}
			gml, ok := lc.vars["GOMEMLIMIT"]
			if !ok {
				t.Fatal("no GOMEMLIMIT: the GC would let the heap grow to twice the live data, past the limit")
			}
			soft, err := parseGoMemLimit(gml)
			if err != nil {
				t.Fatalf("GOMEMLIMIT %q: %v", gml, err)
			}
			if r := float64(soft) / float64(limit.Value()); r < 0.8 || r > 0.95 {
				t.Errorf("GOMEMLIMIT %s is %.0f%% of the memory limit %s, want 80-95%%", gml, 100*r, limit.String())
			}
		})
	}
	if len(intervals) == 2 && intervals[0] != intervals[1] {
		t.Errorf("intervals %v: the locals' and the globals' must be equal", intervals)
	}
}

// socketDirMounted reports whether the directory of a unixgram socket
// is a hostPath volume mounted writable in w's container.
func socketDirMounted(w workload, socket string) bool {
	c := &w.template.Spec.Containers[0]
	for _, vm := range c.VolumeMounts {
		if vm.MountPath != path.Dir(socket) || vm.ReadOnly || vm.SubPath != "" {
			continue
		}
		for _, v := range w.template.Spec.Volumes {
			if v.Name == vm.Name && v.HostPath != nil {
				return true
			}
		}
	}
	return false
}

func unspecified(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// parseGoMemLimit parses GOMEMLIMIT's syntax: bytes, or a number with a
// B, KiB, MiB, GiB or TiB suffix.
func parseGoMemLimit(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("not a positive size like 460MiB")
	}
	return n * mult, nil
}

// TestLocalsForwardToTheHeadlessService: the locals' forward_address is
// the globals' headless Service's cluster DNS name on its port, so that
// it resolves to every ready global pod.
func TestLocalsForwardToTheHeadlessService(t *testing.T) {
	m := load(t)
	l, g := m.local(t), m.global(t)
	lc := loadConfig(t, m, l)
	svc := m.services[m.statefulSet[g.name].Spec.ServiceName]
	if svc == nil {
		t.Fatal("no headless Service for the globals")
	}
	if len(lc.cfg.ForwardAddress) != 1 {
		t.Fatalf("forward_address %v: want the Service's name alone", lc.cfg.ForwardAddress)
	}
	a, err := forward.ParseAddress(lc.cfg.ForwardAddress[0])
	if err != nil {
		t.Fatal(err)
	}
	wantHost := fmt.Sprintf("%s.%s.svc.%s", svc.Name, svc.Namespace, clusterDomain)
	if strings.TrimSuffix(a.Host, ".") != wantHost {
		t.Errorf("forward_address host %q, want the headless Service %q", a.Host, wantHost)
	}
	// http: one member per A record. https keeps the name as one member
	// (TLS verifies it), and the series would not shard.
	if a.Scheme != "http" {
		t.Errorf("forward_address scheme %q: only http:// fans a DNS name out to its pods", a.Scheme)
	}
	if a.Port != strconv.Itoa(int(svc.Spec.Ports[0].Port)) {
		t.Errorf("forward_address port %q, want the Service's %d", a.Port, svc.Spec.Ports[0].Port)
	}
	if a.Path != "" {
		t.Errorf("forward_address path %q: the globals serve /import at the root", a.Path)
	}
}

// TestSecretsAreReferencedNotApplied: every Secret a pod refers to is in
// secrets.example.yaml with placeholders only, and kustomization.yaml
// never applies it (TestKustomizationListsEveryManifest).
func TestSecretsAreReferencedNotApplied(t *testing.T) {
	m := load(t)
	used := map[string]bool{}
	for _, w := range workloads(t, m) {
		for _, e := range w.container(t).Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				used[e.ValueFrom.SecretKeyRef.Name] = true
			}
		}
	}
	for name, s := range m.secrets {
		if !used[name] {
			t.Errorf("Secret %s is referred to by no pod", name)
		}
		if len(s.Data) > 0 {
			t.Errorf("Secret %s: data holds values; the example carries CHANGE-ME placeholders in stringData", name)
		}
		for k, v := range s.StringData {
			if v != "CHANGE-ME" {
				t.Errorf("Secret %s key %s: %q, want the CHANGE-ME placeholder", name, k, v)
			}
		}
	}
	for name := range used {
		if m.secrets[name] == nil {
			t.Errorf("Secret %s is used but not in secrets.example.yaml", name)
		}
	}
}

// image is what the tests read from deploy/Dockerfile.
type image struct {
	stages      []stage
	user        string   // the final stage's USER
	exposed     []string // port/proto
	entrypoint  []string
	configPath  string // ENTRYPOINT's -f
	copiedFiles []string
}

type stage struct {
	from string
	name string
	// instructions are the stage's lines, continuations joined, comments
	// dropped, keyword upper-cased.
	instructions []string
}

var (
	dockerOnce sync.Once
	dockerImg  *image
	dockerErr  error
)

func dockerfile(t *testing.T) *image {
	t.Helper()
	dockerOnce.Do(func() { dockerImg, dockerErr = parseDockerfile("Dockerfile") })
	if dockerErr != nil {
		t.Fatal(dockerErr)
	}
	return dockerImg
}

func parseDockerfile(file string) (*image, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var lines []string
	var cur strings.Builder
	for line := range strings.SplitSeq(string(data), "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "#") || (t == "" && cur.Len() == 0) {
			continue
		}
		if cont, ok := strings.CutSuffix(t, "\\"); ok {
			cur.WriteString(cont)
			cur.WriteByte(' ')
			continue
		}
		cur.WriteString(t)
		if s := strings.TrimSpace(cur.String()); s != "" {
			lines = append(lines, s)
		}
		cur.Reset()
	}
	img := &image{}
	for _, l := range lines {
		kw, rest, _ := strings.Cut(l, " ")
		kw = strings.ToUpper(kw)
		rest = strings.TrimSpace(rest)
		if kw == "FROM" {
			f := strings.Fields(rest)
			st := stage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			img.stages = append(img.stages, st)
			continue
		}
		if len(img.stages) == 0 {
			if kw != "ARG" {
				return nil, fmt.Errorf("%s: %s before FROM", file, kw)
			}
			continue
		}
		st := &img.stages[len(img.stages)-1]
		st.instructions = append(st.instructions, kw+" "+rest)
	}
	if len(img.stages) < 2 {
		return nil, fmt.Errorf("%s: %d stages, want a build stage and a final one", file, len(img.stages))
	}
	final := img.stages[len(img.stages)-1]
	for _, in := range final.instructions {
		kw, rest, _ := strings.Cut(in, " ")
		switch kw {
		case "USER":
			img.user = rest
		case "EXPOSE":
			for _, p := range strings.Fields(rest) {
				if !strings.Contains(p, "/") {
					p += "/tcp"
				}
				img.exposed = append(img.exposed, strings.ToLower(p))
			}
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &img.entrypoint); err != nil {
				return nil, fmt.Errorf("%s: ENTRYPOINT %s: want the exec (JSON) form, so the binary is PID 1 and gets SIGTERM: %w", file, rest, err)
			}
		case "COPY":
			f := strings.Fields(rest)
			img.copiedFiles = append(img.copiedFiles, f[len(f)-1])
		}
	}
	for i, a := range img.entrypoint {
		if a == "-f" && i+1 < len(img.entrypoint) {
			img.configPath = img.entrypoint[i+1]
		}
	}
	if img.configPath == "" {
		return nil, fmt.Errorf("%s: ENTRYPOINT %v gives no -f config path", file, img.entrypoint)
	}
	return img, nil
}

// TestDockerfile checks what can be checked without a Docker engine: the
// builder's Go is go.mod's, the binary is static and versioned, the image
// runs as a numeric non-root user that the manifests match, exposes the
// ports they use, and reads the config where they mount it.
func TestDockerfile(t *testing.T) {
	img := dockerfile(t)
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(gomod)
	if goVersion == nil {
		t.Fatal("go.mod has no go line")
	}
	build := img.stages[0]
	if want := "golang:" + string(goVersion[1]); build.from != want && !strings.HasPrefix(build.from, want+"-") {
		t.Errorf("build stage FROM %s, want %s (go.mod's go line)", build.from, want)
	}
	var buildCmd string
	for _, in := range build.instructions {
		if strings.HasPrefix(in, "RUN ") && strings.Contains(in, "go build") {
			buildCmd = in
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=${VERSION}", "./cmd/veneur-lite"} {
		if !strings.Contains(buildCmd, want) {
			t.Errorf("build stage: the go build RUN %q lacks %s", buildCmd, want)
		}
	}
	if !slices.ContainsFunc(build.instructions, func(in string) bool { return strings.HasPrefix(in, "ARG VERSION") }) {
		t.Error("build stage: no ARG VERSION for -X main.version")
	}
	mainGo, err := os.ReadFile("../cmd/veneur-lite/main.go")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^var version = "`).Match(mainGo) {
		t.Error("cmd/veneur-lite/main.go no longer declares var version, which -X main.version sets")
	}
	final := img.stages[len(img.stages)-1].from
	if final != "scratch" && !strings.HasPrefix(final, "gcr.io/distroless/static") {
		t.Errorf("final stage FROM %s: want distroless static (or scratch)", final)
	}

	uid, gid, _ := strings.Cut(img.user, ":")
	u, err := strconv.ParseInt(uid, 10, 64)
	if err != nil || u == 0 {
		t.Fatalf("USER %q: want a numeric non-root uid, which runAsNonRoot can verify", img.user)
	}
	if gid != "" {
		if _, err := strconv.Atoi(gid); err != nil {
			t.Errorf("USER %q: numeric gid", img.user)
		}
	}
	for _, want := range []string{"8125/udp", "8125/tcp", "8127/tcp"} {
		if !slices.Contains(img.exposed, want) {
			t.Errorf("EXPOSE %v lacks %s", img.exposed, want)
		}
	}
	if len(img.entrypoint) != 3 || !slices.Contains(img.copiedFiles, img.entrypoint[0]) {
		t.Errorf("ENTRYPOINT %v: want [<the copied binary> -f <config>]", img.entrypoint)
	}

	m := load(t)
	for _, w := range workloads(t, m) {
		if sc := w.template.Spec.SecurityContext; sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != u {
			t.Errorf("%s: runAsUser is not the image's USER %d", w, u)
		}
		for _, p := range w.container(t).Ports {
			if pp := fmt.Sprintf("%d/%s", p.ContainerPort, strings.ToLower(string(p.Protocol))); !slices.Contains(img.exposed, pp) {
				t.Errorf("%s: port %s is not EXPOSEd", w, pp)
			}
		}
		configFile(t, m, w, img.configPath) // fails when nothing is mounted there
	}
}

// TestGlobalJournalOnItsOwnVolume: the root of the tier journals its
// imports (import_journal_dir) on a volume of its own, from the
// StatefulSet's volumeClaimTemplates, writable by the pod's user and large
// enough for import_journal_max_bytes; the locals journal nothing.
func TestGlobalJournalOnItsOwnVolume(t *testing.T) {
	m := load(t)
	for _, w := range workloads(t, m) {
		cfg := loadConfig(t, m, w).cfg
		if w.local {
			if cfg.ImportJournalDir != "" {
				t.Errorf("%s: import_journal_dir %q on a local", w, cfg.ImportJournalDir)
			}
			continue
		}
		if cfg.ImportJournalDir == "" {
			t.Fatalf("%s: import_journal_dir empty: a global killed without warning would lose what it acknowledged", w)
		}
		ss := m.statefulSet[w.name]
		c := w.container(t)
		var mount *corev1.VolumeMount
		for i, vm := range c.VolumeMounts {
			if vm.MountPath == cfg.ImportJournalDir {
				mount = &c.VolumeMounts[i]
			}
		}
		if mount == nil || mount.ReadOnly {
			t.Fatalf("%s: no writable volume mounted at import_journal_dir %s", w, cfg.ImportJournalDir)
		}
		var claim *corev1.PersistentVolumeClaim
		for i, pvc := range ss.Spec.VolumeClaimTemplates {
			if pvc.Name == mount.Name {
				claim = &ss.Spec.VolumeClaimTemplates[i]
			}
		}
		if claim == nil {
			t.Fatalf("%s: volume %q is not one of the volumeClaimTemplates: the journal must be the pod's own and outlive it", w, mount.Name)
		}
		storage := claim.Spec.Resources.Requests[corev1.ResourceStorage]
		if cfg.ImportJournalMaxBytes == 0 || storage.Value() < cfg.ImportJournalMaxBytes {
			t.Errorf("%s: journal volume of %s for import_journal_max_bytes %d", w, storage.String(), cfg.ImportJournalMaxBytes)
		}
		if sc := w.template.Spec.SecurityContext; sc == nil || sc.FSGroup == nil || sc.RunAsUser == nil || *sc.FSGroup != *sc.RunAsGroup {
			t.Errorf("%s: fsGroup must be the pod's group, so that the journal volume is writable", w)
		}
	}
}
