package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// destination is where the lines go, parsed from -hostport.
type destination struct {
	network string // udp, tcp or unixgram
	address string // host:port, or a socket path
}

func (d destination) String() string { return d.network + "://" + d.address }

// parseHostport reads udp://host:port, tcp://host:port or
// unixgram:///path; a bare host:port means UDP, as in Veneur.
func parseHostport(s string) (destination, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		scheme, rest = "udp", s
	}
	switch scheme {
	case "udp", "tcp":
		if _, _, err := net.SplitHostPort(rest); err != nil {
			return destination{}, fmt.Errorf("-hostport %q: %w", s, err)
		}
	case "unixgram":
		if rest == "" {
			return destination{}, fmt.Errorf("-hostport %q: no socket path", s)
		}
	default:
		return destination{}, fmt.Errorf("-hostport %q: want udp://host:port, tcp://host:port or unixgram:///path", s)
	}
	return destination{network: scheme, address: rest}, nil
}

// tlsOptions are the client side of TLS over tcp://, named as veneur-lite's
// forward client names them (tls: {ca_file, cert_file, key_file,
// server_name}).
type tlsOptions struct {
	enabled    bool
	caFile     string
	certFile   string
	keyFile    string
	serverName string
}

// config loads the files. With no CA file the system roots verify the
// server; with no server name the host of -hostport is checked.
func (o tlsOptions) config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.serverName}
	if o.caFile != "" {
		pem, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, fmt.Errorf("-tls_ca_file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-tls_ca_file %s: no PEM certificate in it", o.caFile)
		}
	}
	if o.certFile != "" {
		cert, err := tls.LoadX509KeyPair(o.certFile, o.keyFile)
		if err != nil {
			return nil, fmt.Errorf("-tls_cert_file/-tls_key_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// send delivers payload, a series of newline-terminated lines, within
// timeout. UDP and unixgram send it as one datagram. TCP writes it, closes
// its side and waits for the server to close the connection: a server that
// has read up to our end has every line, and a TLS server that refuses the
// client's certificate says so only then (TLS 1.3 finishes the client's
// handshake before the server has checked it). A DogStatsD server never
// answers over TCP, so an answer means the lines were not taken: a TLS
// listener (veneur-lite's says so in plain text) read them as a handshake.
func send(dst destination, tlsCfg *tls.Config, payload []byte, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	dialer := &net.Dialer{Deadline: deadline}
	conn, err := dialer.Dial(dst.network, dst.address)
	if err != nil {
		return explain(err, timeout)
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	if tlsCfg != nil {
		tc := tls.Client(conn, withServerName(tlsCfg, dst.address))
		if err := tc.Handshake(); err != nil {
			return explainHandshake(err, timeout)
		}
		conn = tc
	}
	_, werr := conn.Write(payload)
	if dst.network != "tcp" {
		return werr
	}
	if werr == nil {
		werr = conn.(interface{ CloseWrite() error }).CloseWrite()
	}
	// Read even after a failed write: a TLS server that refused us may
	// have said why before it closed. A nil error is EOF: the server has
	// read everything and closed.
	answer, rerr := readAnswer(conn)
	if tlsCfg == nil && (len(answer) > 0 || errors.Is(rerr, syscall.ECONNRESET)) {
		return plainRefused(answer, firstErr(werr, rerr))
	}
	if isRemoteAlert(rerr) || werr == nil {
		if rerr != nil {
			return explain(rerr, timeout)
		}
		return nil
	}
	return explain(werr, timeout)
}

// withServerName is cfg with the name to verify set to the host of
// address when cfg leaves it empty, as tls.Dial does.
func withServerName(cfg *tls.Config, address string) *tls.Config {
	if cfg.ServerName != "" {
		return cfg
	}
	c := cfg.Clone()
	c.ServerName = address
	if host, _, err := net.SplitHostPort(address); err == nil {
		c.ServerName = host
	}
	return c
}

// answerKept is how much of an unexpected answer readAnswer keeps to
// quote.
const answerKept = 200

// readAnswer reads the connection to its end and returns the start of
// whatever the server sent.
func readAnswer(conn net.Conn) ([]byte, error) {
	buf := make([]byte, answerKept)
	kept := 0
	for {
		n, err := conn.Read(buf[kept:])
		kept += n
		if kept == len(buf) {
			_, err = io.Copy(io.Discard, conn)
			return buf, err
		}
		if errors.Is(err, io.EOF) {
			return buf[:kept], nil
		}
		if err != nil {
			return buf[:kept], err
		}
	}
}

// plainRefused explains an answer (or a reset) to plain lines: the
// server did not take them as DogStatsD.
func plainRefused(answer []byte, err error) error {
	said := ""
	if line, _, _ := bytes.Cut(answer, []byte("\n")); len(line) > 0 {
		said = fmt.Sprintf(" (it said %q)", line)
	}
	if len(answer) > 0 {
		return fmt.Errorf("the server answered instead of reading the lines%s, so they were not taken: the server speaks TLS? use -tls, with -tls_ca_file if a private CA signed its certificate", said)
	}
	return fmt.Errorf("the server reset the connection, so the lines may not have been read: the server speaks TLS? use -tls, with -tls_ca_file if a private CA signed its certificate: %w", err)
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// explainHandshake says what a failed TLS handshake means. A server that
// closes, resets, answers in plain text or stays silent does not speak
// TLS on that port; a refusal or an untrusted certificate is said as it
// is.
func explainHandshake(err error, timeout time.Duration) error {
	const notTLS = "the server does not speak TLS on this port? leave out -tls (and the -tls_* flags) for a plain tcp:// listener"
	var rh tls.RecordHeaderError
	switch {
	case isRemoteAlert(err):
		return explain(err, timeout)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("no TLS handshake answer within -timeout %s: %s", timeout, notTLS)
	case errors.As(err, &rh):
		return fmt.Errorf("the server answered the TLS handshake with %q, which is not TLS: %s", rh.RecordHeader[:], notTLS)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET):
		return fmt.Errorf("the server closed the connection during the TLS handshake: %s (%w)", notTLS, err)
	}
	return fmt.Errorf("TLS handshake: %w", err)
}

// explain adds what an error means for the lines sent.
func explain(err error, timeout time.Duration) error {
	switch {
	case isRemoteAlert(err):
		return fmt.Errorf("the server refused the connection (is the client certificate right?): %w", err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("no answer within -timeout %s, so delivery is not confirmed: %w", timeout, err)
	}
	return err
}

// isRemoteAlert reports whether err is a TLS alert sent by the server.
func isRemoteAlert(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error"
}
