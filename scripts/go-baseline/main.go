// The baseline `npm run bench` measures our GeneratePatches against: CAPI's own Go runtime-extension
// server (sigs.k8s.io/cluster-api/exp/runtime/server, from the Go module proxy) answering the same
// request with the same patches. It decodes every template to find its kind, as our server does, and
// answers with the JSON patch our renderer produced for that kind (read once from -ops at start, so
// the file contents are not rendered per request: a lower bound on what a Go extension would spend).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"os"

	runtimecatalog "sigs.k8s.io/cluster-api/api/runtime/catalog"
	runtimehooksv1 "sigs.k8s.io/cluster-api/api/runtime/hooks/v1alpha1"
	"sigs.k8s.io/cluster-api/exp/runtime/server"
	ctrl "sigs.k8s.io/controller-runtime"
)

func main() {
	port := flag.Int("port", 9443, "port")
	certDir := flag.String("cert-dir", "", "folder with tls.crt and tls.key")
	opsFile := flag.String("ops", "", "JSON object: template kind -> JSON patch")
	flag.Parse()

	raw, err := os.ReadFile(*opsFile)
	if err != nil {
		panic(err)
	}
	var ops map[string]json.RawMessage
	if err := json.Unmarshal(raw, &ops); err != nil {
		panic(err)
	}
	catalog := runtimecatalog.New()
	if err := runtimehooksv1.AddToCatalog(catalog); err != nil {
		panic(err)
	}
	srv, err := server.New(server.Options{Catalog: catalog, Host: "127.0.0.1", Port: *port, CertDir: *certDir})
	if err != nil {
		panic(err)
	}
	err = srv.AddExtensionHandler(server.ExtensionHandler{
		Hook: runtimehooksv1.GeneratePatches,
		Name: "generate-patches",
		HandlerFunc: func(_ context.Context, req *runtimehooksv1.GeneratePatchesRequest, resp *runtimehooksv1.GeneratePatchesResponse) {
			for _, item := range req.Items {
				var template struct {
					Kind string `json:"kind"`
				}
				if err := json.Unmarshal(item.Object.Raw, &template); err != nil {
					resp.Status = runtimehooksv1.ResponseStatusFailure
					resp.Message = err.Error()
					return
				}
				if patch, ok := ops[template.Kind]; ok {
					resp.Items = append(resp.Items, runtimehooksv1.GeneratePatchesResponseItem{UID: item.UID, PatchType: runtimehooksv1.JSONPatchType, Patch: patch})
				}
			}
			resp.Status = runtimehooksv1.ResponseStatusSuccess
		},
	})
	if err != nil {
		panic(err)
	}
	if err := srv.Start(ctrl.SetupSignalHandler()); err != nil {
		panic(err)
	}
}
