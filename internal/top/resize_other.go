//go:build !unix

package top

// notifyResize never ticks where there is no SIGWINCH: the live view
// takes the terminal's size at each refresh anyway.
func notifyResize() (resized <-chan struct{}, stop func()) {
	return nil, func() {}
}
