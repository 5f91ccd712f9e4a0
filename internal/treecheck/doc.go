// Package treecheck has no code: its tests check the repository tree
// itself, for rules no compiler enforces, such as that nothing outside
// the Markdown pages cites a document that is not in the repository
// (docs/input.md, docs/output.md, docs/configuration.md and wire/FORMAT.md
// are the contract).
package treecheck
