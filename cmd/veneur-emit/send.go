package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
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
// handshake before the server has checked it).
func send(dst destination, tlsCfg *tls.Config, payload []byte, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	dialer := &net.Dialer{Deadline: deadline}
	var conn net.Conn
	var err error
	if tlsCfg != nil {
		conn, err = (&tls.Dialer{NetDialer: dialer, Config: tlsCfg}).Dial(dst.network, dst.address)
	} else {
		conn, err = dialer.Dial(dst.network, dst.address)
	}
	if err != nil {
		return explain(err, timeout)
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	_, werr := conn.Write(payload)
	if dst.network != "tcp" {
		return werr
	}
	if werr == nil {
		werr = conn.(interface{ CloseWrite() error }).CloseWrite()
	}
	// Read even after a failed write: a TLS server that refused us may
	// have said why before it closed. io.Copy returns nil at EOF, when the
	// server has read everything and closed.
	_, rerr := io.Copy(io.Discard, conn)
	if isRemoteAlert(rerr) || werr == nil {
		if rerr != nil {
			return explain(rerr, timeout)
		}
		return nil
	}
	return explain(werr, timeout)
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
