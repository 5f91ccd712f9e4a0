package treecheck

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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
	eachLineOutsidePages(t, root, files, func(name string, n int, line []byte) {
		for _, ref := range outsideRefs {
			if bytes.Contains(line, []byte(ref)) {
				t.Errorf("%s:%d cites %q: point at docs/ or wire/FORMAT.md instead", name, n, ref)
			}
		}
	})
}

// eachLineOutsidePages calls visit with every line (numbered from 1) of
// the files that are not Markdown pages.
func eachLineOutsidePages(t *testing.T, root string, files []string, visit func(name string, n int, line []byte)) {
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
			visit(name, i+1, line)
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

// headingCitation is a citation of a section: a page of the repository,
// from its root, then the heading in quotes (docs/output.md, "Magic tags").
var headingCitation = regexp.MustCompile(`([A-Za-z0-9_./-]+\.md),? "([^"]+)"`)

// A section cited from code, tests, configuration or scripts exists: the
// page has a heading that begins with the cited words, so that renaming
// a heading cannot leave a citation pointing nowhere.
func TestCitedSectionsExist(t *testing.T) {
	root := moduleRoot(t)
	headings := map[string][]string{} // page → its headings, backticks removed
	cited := 0
	eachLineOutsidePages(t, root, trackedFiles(t, root), func(name string, n int, line []byte) {
		for _, m := range headingCitation.FindAllSubmatch(line, -1) {
			page, section := string(m[1]), string(m[2])
			hs, ok := headings[page]
			if !ok {
				hs = pageHeadings(t, filepath.Join(root, page))
				headings[page] = hs
			}
			cited++
			if !slices.ContainsFunc(hs, func(h string) bool { return strings.HasPrefix(h, section) }) {
				t.Errorf("%s:%d cites %s, %q: the page has no such heading", name, n, page, section)
			}
		}
	})
	if cited == 0 {
		t.Fatal("found no section citations; the pattern is broken")
	}
}

var markdownHeading = regexp.MustCompile(`^#{1,6} +(.*?) *$`)

// pageHeadings returns the Markdown headings of a page, without their
// marks and backticks; none if the page does not exist.
func pageHeadings(t *testing.T, path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		t.Fatal(err)
	}
	var hs []string
	fenced := false // inside a ``` block, where "# ..." is a comment
	for line := range strings.SplitSeq(string(data), "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
		}
		if m := markdownHeading.FindStringSubmatch(line); m != nil && !fenced {
			hs = append(hs, strings.ReplaceAll(m[1], "`", ""))
		}
	}
	return hs
}
