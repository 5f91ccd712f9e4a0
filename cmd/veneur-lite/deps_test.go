package main

import (
	"debug/buildinfo"
	"strings"
	"testing"
)

// The daemon links only what it runs: the deploy manifests' checker
// (k8s.io/…) and the benchmark plots (gonum.org/…) are the module's too,
// and an import that pulled either into the binary would add megabytes
// and their dependencies' CVEs to every host.
func TestBinaryLeavesOutToolingModules(t *testing.T) {
	info, err := buildinfo.ReadFile(binary(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Deps) == 0 {
		t.Fatal("the binary lists no modules; its build info is missing")
	}
	for _, dep := range info.Deps {
		for _, banned := range []string{"k8s.io/", "sigs.k8s.io/", "gonum.org/"} {
			if strings.HasPrefix(dep.Path, banned) {
				t.Errorf("veneur-lite links %s %s", dep.Path, dep.Version)
			}
		}
	}
}
