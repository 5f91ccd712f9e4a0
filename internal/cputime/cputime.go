// Package cputime reads CPU time, for benchmarks that report CPU per unit
// of work: on a shared machine, wall time is mostly other processes.
package cputime

import "time"

// Thread is the user + system CPU time of the calling OS thread; the caller
// must hold its thread (runtime.LockOSThread) for two readings to compare.
// It is 0 where not measured (outside Linux).
func Thread() time.Duration { return thread() }

// Process is the user + system CPU time of the whole process so far, its
// garbage collector included; 0 where not measured.
func Process() time.Duration { return process() }
