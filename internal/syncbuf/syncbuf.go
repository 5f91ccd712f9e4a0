// Package syncbuf is a bytes.Buffer that several goroutines may write, and
// one read, at once: a log destination, a child process's output, a
// terminal, each collected for a test to look at.
package syncbuf

import (
	"bytes"
	"sync"
)

// Buffer collects what is written to it. The zero value is ready.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
