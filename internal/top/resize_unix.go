//go:build unix

package top

import (
	"os"
	"os/signal"
	"syscall"
)

// notifyResize ticks when the terminal's size changes (SIGWINCH), until
// stop is called.
func notifyResize() (resized <-chan struct{}, stop func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGWINCH)
	out := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-sig:
				select {
				case out <- struct{}{}:
				default: // a redraw is pending already
				}
			case <-done:
				return
			}
		}
	}()
	return out, func() {
		signal.Stop(sig)
		close(done)
	}
}
