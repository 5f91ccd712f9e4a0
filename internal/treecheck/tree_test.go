package treecheck

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// outsideRefs are citations of a document outside the repository. They
// are spelled in two halves so that this file does not hold them.
var outsideRefs = []string{"SPEC" + " §", "../" + "shared"}

// Code, tests, configuration and scripts cite the project's own pages,
// never a spec kept outside the repository.
func TestNoCitationsOutsideTheRepository(t *testing.T) {
	root := moduleRoot(t)
	files := trackedFiles(t, root)
	if len(files) < 50 {
		t.Fatalf("found %d files under %s; the walk is broken", len(files), root)
	}
	for _, name := range files {
		if strings.HasSuffix(name, ".md") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			if os.IsNotExist(err) { // deleted in the working tree, not yet committed
				continue
			}
			t.Fatal(err)
		}
		for i, line := range bytes.Split(data, []byte("\n")) {
			for _, ref := range outsideRefs {
				if bytes.Contains(line, []byte(ref)) {
					t.Errorf("%s:%d cites %q: point at docs/ or wire/FORMAT.md instead", name, i+1, ref)
				}
			}
		}
	}
}

// moduleRoot is the directory holding go.mod, above this package's.
func moduleRoot(t *testing.T) string {
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// trackedFiles lists the files git tracks under root, or, without git
// (a source tarball), every file but those under .git.
func trackedFiles(t *testing.T, root string) []string {
	cmd := exec.Command("git", "ls-files", "-z")
	cmd.Dir = root
	if out, err := cmd.Output(); err == nil {
		return strings.FieldsFunc(string(out), func(r rune) bool { return r == 0 })
	}
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == ".git" {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() {
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
