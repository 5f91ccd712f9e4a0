// Package deploy holds the container image (Dockerfile) and the Kubernetes
// manifests (kubernetes/) of veneur-lite; it has no Go code of its own.
// Its tests decode every manifest strictly into the Kubernetes API types,
// load each ConfigMap's config file with veneur-lite's own config.Load in
// the environment the manifests give it, and check the invariants the
// deployment relies on (deploy/README.md).
package deploy
