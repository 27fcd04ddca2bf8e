package envoy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	// Every typed_config the examples use must resolve, so that a wrong
	// "@type" fails the test as it would fail Envoy.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/http/early_header_mutation/header_mutation/v3"
)

// loadBootstrap reads an Envoy YAML configuration the way Envoy does:
// YAML → JSON → envoy.config.bootstrap.v3.Bootstrap, strictly (an unknown
// field or an unresolvable Any type is an error), then the proto
// constraints Envoy checks (protoc-gen-validate rules).
func loadBootstrap(path string) (*bootstrapv3.Bootstrap, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	js, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return nil, err
	}
	var b bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(js, &b); err != nil {
		return nil, err
	}
	if err := b.ValidateAll(); err != nil {
		return nil, err
	}
	return &b, nil
}

// TestExampleConfigsLoad loads every examples/envoy/*.yaml and checks the
// choices its README explains: request headers only, a message timeout
// above likes' own bounds, failing closed, HTTP/2 keepalive no more
// frequent than the server allows, ext_proc off on the app's routes, and a
// like-route regex that agrees with the API's routes.
func TestExampleConfigsLoad(t *testing.T) {
	files, err := filepath.Glob("../examples/envoy/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("got %d example configurations, want envoy.yaml and envoy-jwt-authn.yaml", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f)+" is a valid Envoy bootstrap", func(t *testing.T) {
			b, err := loadBootstrap(f)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			checkExample(t, b)
		})
	}
	t.Run("a typo fails the load", func(t *testing.T) {
		raw, err := os.ReadFile("../examples/envoy/envoy.yaml")
		if err != nil {
			t.Fatal(err)
		}
		for _, typo := range [][2]string{
			{"message_timeout:", "message_timout:"},
			{"ext_proc.v3.ExternalProcessor", "ext_proc.v3.ExternalProcesor"},
			{"request_body_mode: NONE", "request_body_mode: NOPE"},
			{"port_value: 9002", "port_value: 99999"},
		} {
			bad := filepath.Join(t.TempDir(), "bad.yaml")
			if err := os.WriteFile(bad, []byte(strings.Replace(string(raw), typo[0], typo[1], 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := loadBootstrap(bad); err == nil {
				t.Errorf("%q → %q: got no error, want the load to fail", typo[0], typo[1])
			}
		}
	})
}

func checkExample(t *testing.T, b *bootstrapv3.Bootstrap) {
	t.Helper()
	clusters := map[string]*clusterv3.Cluster{}
	for _, c := range b.GetStaticResources().GetClusters() {
		clusters[c.GetName()] = c
	}
	var hcm *hcmv3.HttpConnectionManager
	for _, l := range b.GetStaticResources().GetListeners() {
		for _, fc := range l.GetFilterChains() {
			hcm = findHCM(t, fc)
		}
	}
	if hcm == nil {
		t.Fatal("no http_connection_manager")
	}
	var ep *extprocfilterv3.ExternalProcessor
	for _, f := range hcm.GetHttpFilters() {
		if f.GetName() == "envoy.filters.http.ext_proc" {
			ep = &extprocfilterv3.ExternalProcessor{}
			if err := f.GetTypedConfig().UnmarshalTo(ep); err != nil {
				t.Fatal(err)
			}
		}
	}
	if ep == nil {
		t.Fatal("no envoy.filters.http.ext_proc filter")
	}
	pm := ep.GetProcessingMode()
	if pm.GetRequestHeaderMode() != extprocfilterv3.ProcessingMode_SEND || pm.GetResponseHeaderMode() != extprocfilterv3.ProcessingMode_SKIP ||
		pm.GetRequestBodyMode() != extprocfilterv3.ProcessingMode_NONE || pm.GetResponseBodyMode() != extprocfilterv3.ProcessingMode_NONE ||
		pm.GetRequestTrailerMode() != extprocfilterv3.ProcessingMode_SKIP || pm.GetResponseTrailerMode() != extprocfilterv3.ProcessingMode_SKIP {
		t.Errorf("processing_mode: got %v, want request headers only", pm)
	}
	if d := ep.GetMessageTimeout().AsDuration(); d <= time.Second {
		t.Errorf("message_timeout: got %v, want more than read.timeout (1s)", d)
	}
	if ep.GetFailureModeAllow() || ep.GetObservabilityMode() {
		t.Errorf("got failure_mode_allow %v, observability_mode %v, want both false", ep.GetFailureModeAllow(), ep.GetObservabilityMode())
	}
	allowed := map[string]bool{}
	for _, p := range ep.GetForwardRules().GetAllowedHeaders().GetPatterns() {
		allowed[p.GetExact()] = true
	}
	for _, h := range []string{":method", ":path"} {
		if !allowed[h] {
			t.Errorf("forward_rules: %s is not forwarded", h)
		}
	}
	if !allowed["authorization"] && !allowed["x-user-id"] {
		t.Error("forward_rules: neither authorization nor x-user-id is forwarded")
	}

	name := ep.GetGrpcService().GetEnvoyGrpc().GetClusterName()
	c := clusters[name]
	if c == nil {
		t.Fatalf("ext_proc cluster %q is not defined", name)
	}
	var po upstreamhttpv3.HttpProtocolOptions
	if err := c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].UnmarshalTo(&po); err != nil {
		t.Fatalf("cluster %s: HTTP/2 protocol options: %v", name, err)
	}
	h2 := po.GetExplicitHttpConfig().GetHttp2ProtocolOptions()
	if h2 == nil {
		t.Fatalf("cluster %s does not speak HTTP/2 (gRPC needs it)", name)
	}
	def := DefaultConfig()
	if ka := h2.GetConnectionKeepalive().GetInterval().AsDuration(); ka < def.KeepaliveMinTime {
		t.Errorf("connection_keepalive.interval %v is below extproc.keepalive_min_time %v: likes would answer too_many_pings", ka, def.KeepaliveMinTime)
	}
	if got, want := h2.GetMaxConcurrentStreams().GetValue(), def.MaxConcurrentStreams; got != want {
		t.Errorf("max_concurrent_streams: got %d, want %d as extproc.max_concurrent_streams", got, want)
	}
	port := c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress().GetPortValue()
	if port != 9002 {
		t.Errorf("ext_proc port: got %d, want 9002 as in the README's --extproc-listen", port)
	}
	checkRoutes(t, hcm)
}

func findHCM(t *testing.T, fc *listenerv3.FilterChain) *hcmv3.HttpConnectionManager {
	t.Helper()
	for _, f := range fc.GetFilters() {
		if f.GetName() == "envoy.filters.network.http_connection_manager" {
			var h hcmv3.HttpConnectionManager
			if err := f.GetTypedConfig().UnmarshalTo(&h); err != nil {
				t.Fatal(err)
			}
			return &h
		}
	}
	return nil
}

// checkRoutes wants a first route whose regex matches exactly the API's
// like routes, with ext_proc on, and a catch-all with ext_proc disabled.
func checkRoutes(t *testing.T, hcm *hcmv3.HttpConnectionManager) {
	t.Helper()
	routes := hcm.GetRouteConfig().GetVirtualHosts()[0].GetRoutes()
	if len(routes) != 2 {
		t.Fatalf("got %d routes, want the like route and the catch-all", len(routes))
	}
	re, err := regexp.Compile("^(?:" + routes[0].GetMatch().GetSafeRegex().GetRegex() + ")$")
	if err != nil {
		t.Fatal(err)
	}
	api := newFakeAPI(t, apiOptions{})
	for _, p := range []string{"/posts/1/likes", "/posts/1/likes/count", "/posts/abc/likes", "/posts/1%2F2/likes",
		"/posts//likes", "/posts/1/likes/", "/posts/1/likes/count/x", "/posts/1", "/", "/x/posts/1/likes", "/posts/1/2/likes"} {
		if got, want := re.MatchString(p), api.IsLikeRoute(p); got != want {
			t.Errorf("route regex on %s: got match %v, want %v as proxy.API.IsLikeRoute", p, got, want)
		}
	}
	if _, ok := routes[0].GetTypedPerFilterConfig()["envoy.filters.http.ext_proc"]; ok {
		t.Error("the like route must keep ext_proc on")
	}
	var per extprocfilterv3.ExtProcPerRoute
	if err := routes[1].GetTypedPerFilterConfig()["envoy.filters.http.ext_proc"].UnmarshalTo(&per); err != nil || !per.GetDisabled() {
		t.Errorf("catch-all route: got %v (%v), want ext_proc disabled", &per, err)
	}
	if p := routes[1].GetMatch().GetPrefix(); p != "/" {
		t.Errorf("catch-all prefix: got %q, want /", p)
	}
}
