// Package k8s_test validates the Kubernetes manifests of examples/k8s: they
// parse, they reference each other correctly, their configuration is one
// that `likes` accepts, and their probes and ports point at endpoints the
// processes really serve.
package k8s_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/likes-sidecar/likes/config"
	"github.com/likes-sidecar/likes/sidecar"
)

type meta struct {
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

type object struct {
	file       string
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   meta              `json:"metadata"`
	Data       map[string]string `json:"data"`
	StringData map[string]string `json:"stringData"`
	Spec       json.RawMessage   `json:"spec"`
}

type deploymentSpec struct {
	Replicas *int `json:"replicas"`
	Selector struct {
		MatchLabels map[string]string `json:"matchLabels"`
	} `json:"selector"`
	Template struct {
		Metadata meta    `json:"metadata"`
		Spec     podSpec `json:"spec"`
	} `json:"template"`
}

type podSpec struct {
	TerminationGracePeriodSeconds *int `json:"terminationGracePeriodSeconds"`
	SecurityContext               struct {
		RunAsNonRoot *bool `json:"runAsNonRoot"`
	} `json:"securityContext"`
	Volumes []struct {
		Name      string `json:"name"`
		ConfigMap *struct {
			Name string `json:"name"`
		} `json:"configMap"`
	} `json:"volumes"`
	InitContainers []container `json:"initContainers"`
	Containers     []container `json:"containers"`
}

type container struct {
	Name          string   `json:"name"`
	Image         string   `json:"image"`
	RestartPolicy string   `json:"restartPolicy"`
	Args          []string `json:"args"`
	Ports         []struct {
		Name          string `json:"name"`
		ContainerPort int    `json:"containerPort"`
	} `json:"ports"`
	Env []struct {
		Name      string `json:"name"`
		Value     string `json:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `json:"name"`
				Key  string `json:"key"`
			} `json:"secretKeyRef"`
		} `json:"valueFrom"`
	} `json:"env"`
	EnvFrom []struct {
		SecretRef *struct {
			Name string `json:"name"`
		} `json:"secretRef"`
	} `json:"envFrom"`
	VolumeMounts []struct {
		Name      string `json:"name"`
		MountPath string `json:"mountPath"`
	} `json:"volumeMounts"`
	StartupProbe   *probe `json:"startupProbe"`
	LivenessProbe  *probe `json:"livenessProbe"`
	ReadinessProbe *probe `json:"readinessProbe"`
	Resources      struct {
		Requests map[string]string `json:"requests"`
		Limits   map[string]string `json:"limits"`
	} `json:"resources"`
}

type probe struct {
	HTTPGet *struct {
		Path string `json:"path"`
		Port any    `json:"port"` // a name or a number
	} `json:"httpGet"`
}

type serviceSpec struct {
	Selector map[string]string `json:"selector"`
	Ports    []struct {
		Port       int `json:"port"`
		TargetPort any `json:"targetPort"`
	} `json:"ports"`
}

// load parses every document of every YAML file in the directory.
func load(t *testing.T) []object {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("got %v, %v, want the manifests", files, err)
	}
	var objs []object
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(fh)
		for i := 0; ; i++ {
			var doc map[string]any
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			if doc == nil {
				continue
			}
			raw, err := json.Marshal(doc)
			if err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			o := object{file: f}
			if err := json.Unmarshal(raw, &o); err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			objs = append(objs, o)
		}
		fh.Close()
	}
	return objs
}

func find(objs []object, kind, name string) *object {
	for i := range objs {
		if objs[i].Kind == kind && objs[i].Metadata.Name == name {
			return &objs[i]
		}
	}
	return nil
}

func deployment(t *testing.T, o object) deploymentSpec {
	t.Helper()
	var d deploymentSpec
	if err := json.Unmarshal(o.Spec, &d); err != nil {
		t.Fatalf("%s %s: %v", o.Kind, o.Metadata.Name, err)
	}
	return d
}

// likesConfig loads the ConfigMap's likes.yaml the way `likes --config`
// does: strictly (an unknown key or a bad value is an error).
func likesConfig(t *testing.T, cm *object, key string) *config.Values {
	t.Helper()
	body, ok := cm.Data[key]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %s", cm.Metadata.Name, key)
	}
	path := filepath.Join(t.TempDir(), key)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := config.Load(nil, path)
	if err != nil {
		t.Fatalf("ConfigMap %s %s: %v", cm.Metadata.Name, key, err)
	}
	return v
}

// imageEnv is the final stage's ENV of the Dockerfile the containers run.
func imageEnv(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	var joined []string
	cur := ""
	for _, l := range strings.Split(string(raw), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasSuffix(l, "\\") {
			cur += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		joined = append(joined, cur+l)
		cur = ""
	}
	for _, l := range joined {
		if strings.HasPrefix(l, "FROM ") {
			clear(env) // only the final stage counts
		}
		if rest, ok := strings.CutPrefix(l, "ENV "); ok {
			for _, kv := range strings.Fields(rest) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Fatalf("Dockerfile ENV %q: want KEY=value pairs", rest)
				}
				env[k] = v
			}
		}
	}
	return env
}

// effectiveConfig is the configuration the container's process sees: its
// file, under the image's ENV, under the container's literal env (the
// environment wins over the file, as in `likes`).
func effectiveConfig(t *testing.T, cm *object, key string, c container) *config.Values {
	t.Helper()
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "LIKES_") && !strings.HasPrefix(name, "LIKES_TEST_") {
			t.Setenv(name, "") // set for restoring, then removed
			os.Unsetenv(name)
		}
	}
	for k, v := range imageEnv(t) {
		if strings.HasPrefix(k, "LIKES_") {
			t.Setenv(k, v)
		}
	}
	for _, e := range c.Env {
		if strings.HasPrefix(e.Name, "LIKES_") && e.ValueFrom == nil {
			t.Setenv(e.Name, e.Value)
		}
	}
	return likesConfig(t, cm, key)
}

// endpoints are the admin paths each subcommand serves (sidecar/run.go
// Handlers for serve, cmd/likes/admin.go for consume).
var endpoints = map[string][]string{
	"serve":   {"/healthz", "/readyz", "/metrics"},
	"consume": {"/healthz", "/metrics"},
}

func port(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return -1
	}
	n, _ := strconv.Atoi(p)
	return n
}

// likesContainer is a container running the likes image with its pod.
type likesContainer struct {
	deploy string
	pod    podSpec
	meta   meta
	c      container
}

func likesContainers(t *testing.T, objs []object) []likesContainer {
	t.Helper()
	var out []likesContainer
	for _, o := range objs {
		if o.Kind != "Deployment" {
			continue
		}
		d := deployment(t, o)
		for _, c := range append(slices.Clone(d.Template.Spec.InitContainers), d.Template.Spec.Containers...) {
			if strings.Contains(c.Image, "/likes:") {
				out = append(out, likesContainer{o.Metadata.Name, d.Template.Spec, d.Template.Metadata, c})
			}
		}
	}
	if len(out) < 2 {
		t.Fatalf("got %d likes containers, want the sidecar and the consumer", len(out))
	}
	return out
}

func TestManifests(t *testing.T) {
	objs := load(t)
	apiVersions := map[string]string{"ConfigMap": "v1", "Secret": "v1", "Service": "v1", "Deployment": "apps/v1"}

	t.Run("every document is a known kind with a name", func(t *testing.T) {
		for _, o := range objs {
			want, ok := apiVersions[o.Kind]
			if !ok {
				t.Errorf("%s: got kind %q, want one of %v", o.file, o.Kind, apiVersions)
			}
			if o.APIVersion != want {
				t.Errorf("%s %s: got apiVersion %q, want %q", o.file, o.Kind, o.APIVersion, want)
			}
			if !regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`).MatchString(o.Metadata.Name) {
				t.Errorf("%s %s: got name %q, want a DNS label", o.file, o.Kind, o.Metadata.Name)
			}
		}
		for _, kind := range []string{"ConfigMap", "Secret", "Deployment", "Service"} {
			if !slices.ContainsFunc(objs, func(o object) bool { return o.Kind == kind }) {
				t.Errorf("got no %s, want one", kind)
			}
		}
	})

	t.Run("every LIKES_ variable names a configuration key", func(t *testing.T) {
		known := map[string]bool{}
		for _, k := range config.Keys {
			known[k.Env()] = true
		}
		for _, o := range objs {
			for k := range o.StringData {
				if !known[k] {
					t.Errorf("Secret %s: %s is no configuration key's variable", o.Metadata.Name, k)
				}
			}
		}
		for _, lc := range likesContainers(t, objs) {
			for _, e := range lc.c.Env {
				if strings.HasPrefix(e.Name, "LIKES_") && !known[e.Name] {
					t.Errorf("%s/%s: env %s is no configuration key's variable", lc.deploy, lc.c.Name, e.Name)
				}
			}
		}
	})

	t.Run("references to ConfigMaps and Secrets resolve", func(t *testing.T) {
		for _, o := range objs {
			if o.Kind != "Deployment" {
				continue
			}
			d := deployment(t, o)
			for _, vol := range d.Template.Spec.Volumes {
				if vol.ConfigMap != nil && find(objs, "ConfigMap", vol.ConfigMap.Name) == nil {
					t.Errorf("%s: volume %s: no ConfigMap %s", o.Metadata.Name, vol.Name, vol.ConfigMap.Name)
				}
			}
			for _, c := range append(slices.Clone(d.Template.Spec.InitContainers), d.Template.Spec.Containers...) {
				for _, ef := range c.EnvFrom {
					if ef.SecretRef != nil && find(objs, "Secret", ef.SecretRef.Name) == nil {
						t.Errorf("%s/%s: envFrom: no Secret %s", o.Metadata.Name, c.Name, ef.SecretRef.Name)
					}
				}
				for _, e := range c.Env {
					if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
						continue
					}
					ref := e.ValueFrom.SecretKeyRef
					s := find(objs, "Secret", ref.Name)
					if s == nil {
						t.Errorf("%s/%s: env %s: no Secret %s", o.Metadata.Name, c.Name, e.Name, ref.Name)
					} else if _, ok := s.StringData[ref.Key]; !ok {
						t.Errorf("%s/%s: env %s: Secret %s has no key %s", o.Metadata.Name, c.Name, e.Name, ref.Name, ref.Key)
					}
				}
			}
		}
	})

	t.Run("selectors match their pods", func(t *testing.T) {
		for _, o := range objs {
			switch o.Kind {
			case "Deployment":
				d := deployment(t, o)
				if len(d.Selector.MatchLabels) == 0 {
					t.Errorf("%s: empty selector", o.Metadata.Name)
				}
				for k, v := range d.Selector.MatchLabels {
					if d.Template.Metadata.Labels[k] != v {
						t.Errorf("%s: selector %s=%s: got pod label %q", o.Metadata.Name, k, v, d.Template.Metadata.Labels[k])
					}
				}
			case "Service":
				var s serviceSpec
				if err := json.Unmarshal(o.Spec, &s); err != nil {
					t.Fatal(err)
				}
				matched := false
				for _, d := range objs {
					if d.Kind != "Deployment" {
						continue
					}
					ds := deployment(t, d)
					ok := len(s.Selector) > 0
					for k, v := range s.Selector {
						ok = ok && ds.Template.Metadata.Labels[k] == v
					}
					if !ok {
						continue
					}
					matched = true
					for _, p := range s.Ports {
						if !declaresPort(ds.Template.Spec.Containers, p.TargetPort) {
							t.Errorf("Service %s: targetPort %v is no container port of %s", o.Metadata.Name, p.TargetPort, d.Metadata.Name)
						}
					}
				}
				if !matched {
					t.Errorf("Service %s: selector %v matches no Deployment", o.Metadata.Name, s.Selector)
				}
			}
		}
	})

	t.Run("the likes configuration is one that likes accepts", func(t *testing.T) {
		cm := find(objs, "ConfigMap", "likes-config")
		if cm == nil {
			t.Fatal("no ConfigMap likes-config")
		}
		v := likesConfig(t, cm, "likes.yaml")
		if err := sidecar.CountsConfig(v).Validate(); err != nil {
			t.Errorf("counter.*: %v", err)
		}
		if err := sidecar.CoalescerConfig(v).Validate(); err != nil {
			t.Errorf("coalesce.*: %v", err)
		}
		if err := sidecar.ProxyConfig(v).Validate(); err != nil {
			t.Errorf("proxy keys: %v", err)
		}
		if _, _, err := sidecar.DedupFilterConfigs(v); err != nil {
			t.Errorf("dedup filter keys: %v", err)
		}
		if err := sidecar.LikeStateConfig(v).Validate(); err != nil {
			t.Errorf("dedup.shared_state_*: %v", err)
		}
		if got := len(v.List("redis.addrs")); got < 3 {
			t.Errorf("redis.addrs: got %d seeds, want a Redis Cluster's", got)
		}
		if got := v.Int("counter.shards"); got < len(v.List("redis.addrs")) {
			t.Errorf("counter.shards: got %d, want at least one per Redis master (%d)", got, len(v.List("redis.addrs")))
		}
	})

	for _, lc := range likesContainers(t, objs) {
		t.Run(lc.deploy+"/"+lc.c.Name+" runs a real subcommand on the mounted configuration", func(t *testing.T) {
			if len(lc.c.Args) == 0 {
				t.Fatal("no args")
			}
			cmd := lc.c.Args[0]
			if _, ok := endpoints[cmd]; !ok {
				t.Fatalf("got subcommand %q, want serve or consume", cmd)
			}
			i := slices.Index(lc.c.Args, "--config")
			if i < 0 || i+1 >= len(lc.c.Args) {
				t.Fatalf("args %v: want --config <file>", lc.c.Args)
			}
			file := lc.c.Args[i+1]
			var cm *object
			for _, vm := range lc.c.VolumeMounts {
				if filepath.Dir(file) != filepath.Clean(vm.MountPath) {
					continue
				}
				for _, vol := range lc.pod.Volumes {
					if vol.Name == vm.Name && vol.ConfigMap != nil {
						cm = find(objs, "ConfigMap", vol.ConfigMap.Name)
					}
				}
			}
			if cm == nil {
				t.Fatalf("--config %s: no ConfigMap volume mounted at %s", file, filepath.Dir(file))
			}
			v := effectiveConfig(t, cm, filepath.Base(file), lc.c)
			for _, a := range lc.c.Args[1:] {
				if strings.HasPrefix(a, "--") && a != "--config" && a != "--migrate" {
					t.Errorf("arg %s: this test only knows --config and --migrate; check the flag and extend it", a)
				}
			}

			admin := v.String("admin.listen")
			if admin == "" {
				t.Fatal("admin.listen is empty: probes would share the API listener; set it")
			}
			adminPort := port(admin)
			if host, _, _ := net.SplitHostPort(admin); host == "127.0.0.1" || host == "localhost" {
				t.Errorf("admin.listen %s: the kubelet and Prometheus cannot reach loopback", admin)
			}
			probes := map[string]*probe{"startupProbe": lc.c.StartupProbe, "livenessProbe": lc.c.LivenessProbe, "readinessProbe": lc.c.ReadinessProbe}
			if lc.c.LivenessProbe == nil || lc.c.StartupProbe == nil {
				t.Errorf("got liveness %v and startup %v probes, want both", lc.c.LivenessProbe != nil, lc.c.StartupProbe != nil)
			}
			for name, p := range probes {
				if p == nil {
					continue
				}
				if p.HTTPGet == nil {
					t.Errorf("%s: want an httpGet probe", name)
					continue
				}
				if !slices.Contains(endpoints[cmd], p.HTTPGet.Path) {
					t.Errorf("%s: path %s is not served by likes %s (it serves %v)", name, p.HTTPGet.Path, cmd, endpoints[cmd])
				}
				if got := containerPort(lc.c, p.HTTPGet.Port); got != adminPort {
					t.Errorf("%s: port %v is container port %d, want admin.listen's %d", name, p.HTTPGet.Port, got, adminPort)
				}
			}
			if lc.c.LivenessProbe != nil && lc.c.LivenessProbe.HTTPGet != nil && lc.c.LivenessProbe.HTTPGet.Path == "/readyz" {
				t.Errorf("livenessProbe on /readyz: a Redis or Kafka outage would restart every process")
			}
			if a := lc.meta.Annotations; a["prometheus.io/scrape"] == "true" {
				if got, _ := strconv.Atoi(a["prometheus.io/port"]); got != adminPort || a["prometheus.io/path"] != "/metrics" {
					t.Errorf("prometheus.io annotations: got port %q path %q, want %d and /metrics", a["prometheus.io/port"], a["prometheus.io/path"], adminPort)
				}
			}

			grace := 30
			if lc.pod.TerminationGracePeriodSeconds != nil {
				grace = *lc.pod.TerminationGracePeriodSeconds
			}
			if st := v.Duration("shutdown.timeout"); time.Duration(grace)*time.Second <= st {
				t.Errorf("terminationGracePeriodSeconds %d: want more than shutdown.timeout %s", grace, st)
			}
			if lc.pod.SecurityContext.RunAsNonRoot == nil || !*lc.pod.SecurityContext.RunAsNonRoot {
				t.Errorf("pod securityContext: want runAsNonRoot: true (the image runs as uid 65532)")
			}
		})

		t.Run(lc.deploy+"/"+lc.c.Name+" has resource requests and a memory limit above GOMEMLIMIT", func(t *testing.T) {
			r := lc.c.Resources
			if r.Requests["cpu"] == "" || r.Requests["memory"] == "" || r.Limits["memory"] == "" {
				t.Fatalf("got requests %v limits %v, want cpu and memory requests and a memory limit", r.Requests, r.Limits)
			}
			limit := mebibytes(t, r.Limits["memory"])
			if req := mebibytes(t, r.Requests["memory"]); req > limit {
				t.Errorf("memory request %s above limit %s", r.Requests["memory"], r.Limits["memory"])
			}
			for _, e := range lc.c.Env {
				if e.Name == "GOMEMLIMIT" {
					if m := mebibytes(t, strings.TrimSuffix(e.Value, "B")); m >= limit {
						t.Errorf("GOMEMLIMIT %s: want it below the memory limit %s", e.Value, r.Limits["memory"])
					}
				}
			}
		})
	}

	for _, lc := range likesContainers(t, objs) {
		if len(lc.c.Args) == 0 || lc.c.Args[0] != "serve" {
			continue
		}
		cm := find(objs, "ConfigMap", "likes-config")
		if cm == nil {
			t.Fatal("no ConfigMap likes-config")
		}
		t.Run(lc.deploy+"/"+lc.c.Name+" bounds its PostgreSQL pool", func(t *testing.T) {
			// Every app pod runs a sidecar, and each opens up to
			// db.max_conns connections (0: pgx's default, max(4, CPUs of
			// the node) without a CPU limit). Unbounded, a fleet of
			// sidecars re-seeding counts after a Redis loss exhausts
			// PostgreSQL's max_connections and locks out the consumer.
			v := effectiveConfig(t, cm, "likes.yaml", lc.c)
			if n := v.Int("db.max_conns"); n <= 0 || n > 16 {
				t.Errorf("db.max_conns: got %d, want a small explicit pool (1..16) per sidecar: the fleet opens pods × db.max_conns connections", n)
			}
		})
		t.Run(lc.deploy+"/"+lc.c.Name+" fits its memory bounds below GOMEMLIMIT", func(t *testing.T) {
			v := effectiveConfig(t, cm, "likes.yaml", lc.c)
			limit := 0
			for _, e := range lc.c.Env {
				if e.Name == "GOMEMLIMIT" {
					limit = mebibytes(t, strings.TrimSuffix(e.Value, "B"))
				}
			}
			if limit == 0 {
				t.Fatal("no GOMEMLIMIT")
			}
			inFlight := v.Int("admission.max")
			if inFlight == 0 {
				t.Fatal("admission.max 0 (off): nothing bounds the writes in flight, so no memory limit is safe")
			}
			// Per-item costs of examples/k8s/README.md, "Memory". Tokens
			// are assumed to be an identity provider's (RS256, ~1 KiB), not
			// the 143-byte HS256 tokens of `likes token`.
			const (
				recentPair   = 130
				tokenEntry   = 1024 + 70
				countEntry   = 150
				pendingEvent = 150
				request      = 24 << 10 // goroutine stack, connection buffers, request state
			)
			parts := map[string]int{
				"dedup.recent_max":      v.Int("dedup.recent_max") * recentPair,
				"auth.cache_size":       v.Int("auth.cache_size") * tokenEntry,
				"read.cache_max":        v.Int("read.cache_max") * countEntry,
				"coalesce.max_pending":  v.Int("coalesce.max_pending") * pendingEvent,
				"dedup.local_max_bytes": v.Int("dedup.local_max_bytes"),
				"admission.max":         inFlight * request,
			}
			total := 0
			for _, b := range parts {
				total += b
			}
			// Leave the collector a tenth of GOMEMLIMIT to work in.
			if mib := total >> 20; mib > limit*9/10 {
				t.Errorf("the bounded structures take up to %d MiB (%v bytes), want at most 90%% of GOMEMLIMIT %d MiB: lower them or raise GOMEMLIMIT and the memory limit", mib, parts, limit)
			}
		})
	}

	t.Run("the app pod runs likes as a native sidecar and calls it on localhost", func(t *testing.T) {
		web := find(objs, "Deployment", "web")
		if web == nil {
			t.Fatal("no Deployment web")
		}
		d := deployment(t, *web)
		var sc *container
		for i, c := range d.Template.Spec.InitContainers {
			if c.Name == "likes" {
				sc = &d.Template.Spec.InitContainers[i]
			}
		}
		if sc == nil || sc.RestartPolicy != "Always" {
			t.Fatalf("want an init container likes with restartPolicy Always (a native sidecar)")
		}
		cm := find(objs, "ConfigMap", "likes-config")
		v := effectiveConfig(t, cm, "likes.yaml", *sc)
		api := v.String("http.listen")
		if host, _, _ := net.SplitHostPort(api); host != "127.0.0.1" {
			t.Errorf("http.listen %s: want the API on loopback, reachable only inside the pod", api)
		}
		want := fmt.Sprintf("http://127.0.0.1:%d", port(api))
		for _, c := range d.Template.Spec.Containers {
			if i := slices.Index(c.Args, "-likes-url"); i >= 0 && i+1 < len(c.Args) {
				if c.Args[i+1] != want {
					t.Errorf("%s: -likes-url %s, want %s", c.Name, c.Args[i+1], want)
				}
				return
			}
		}
		t.Errorf("no app container passes -likes-url")
	})
}

func declaresPort(cs []container, target any) bool {
	for _, c := range cs {
		if containerPort(c, target) > 0 {
			return true
		}
	}
	return false
}

// containerPort resolves a probe or Service port (name or number) against
// c's declared ports; -1 if it names none.
func containerPort(c container, p any) int {
	for _, cp := range c.Ports {
		switch x := p.(type) {
		case string:
			if cp.Name == x {
				return cp.ContainerPort
			}
		case float64:
			if cp.ContainerPort == int(x) {
				return cp.ContainerPort
			}
		}
	}
	return -1
}

// mebibytes reads a Kubernetes memory quantity in Mi or Gi.
func mebibytes(t *testing.T, q string) int {
	t.Helper()
	for suf, mul := range map[string]int{"Mi": 1, "Gi": 1024} {
		if n, err := strconv.Atoi(strings.TrimSuffix(q, suf)); err == nil && strings.HasSuffix(q, suf) {
			return n * mul
		}
	}
	t.Fatalf("memory quantity %q: this test reads Mi and Gi", q)
	return 0
}
