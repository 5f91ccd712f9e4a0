package address

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	cases := []struct{ in, want string }{
		{"http://global:8127", "http://global:8127"},
		{"http://user:pw@global:8127", "http://xxxxx@global:8127"},
		{"https://token@global:8127/base?x=1", "https://xxxxx@global:8127/base?x=xxxxx"},
		{"http://vm:8428/api/v1/write?api_key=s3cret&extra_label=a", "http://vm:8428/api/v1/write?api_key=xxxxx&extra_label=xxxxx"},
		{"http://h/p?bare#frag", "http://h/p?xxxxx#frag"},
		// What url.Parse rejects is redacted too.
		{"user:pw@global:8127", "xxxxx@global:8127"},
		{"http://us er:p w@h:1", "http://xxxxx@h:1"},
		{"udp://127.0.0.1:8125", "udp://127.0.0.1:8125"},
		{"unixgram:///run/statsd.sock", "unixgram:///run/statsd.sock"},
		{"", ""},
	}
	for _, c := range cases {
		if got := Redact(c.in); got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestCheckHostPort(t *testing.T) {
	for _, ok := range []string{"127.0.0.1:8127", ":8127", "[::1]:0", "localhost:65535"} {
		if err := CheckHostPort(ok); err != nil {
			t.Errorf("CheckHostPort(%q) = %v", ok, err)
		}
	}
	cases := []struct{ in, want string }{
		{"127.0.0.1:99999", `"127.0.0.1:99999": port 99999 is out of range (0 to 65535)`},
		{"127.0.0.1:http", `"127.0.0.1:http": port "http" is not a number`},
		{"127.0.0.1", `"127.0.0.1" is not host:port, such as 127.0.0.1:8127`},
		{"127.0.0.1:", `"127.0.0.1:": no port`},
		{"http://u:pw@h:1", `"http://xxxxx@h:1" is a URL; want host:port, such as 127.0.0.1:8127`},
	}
	for _, c := range cases {
		err := CheckHostPort(c.in)
		if err == nil || err.Error() != c.want {
			t.Errorf("CheckHostPort(%q) = %v, want %q", c.in, err, c.want)
		}
	}
}

func TestParseURL(t *testing.T) {
	u, err := ParseURL("udp://127.0.0.1:8125", "udp")
	if err != nil || u.Scheme != "udp" || u.Host != "127.0.0.1:8125" {
		t.Fatalf("ParseURL = %v, %v", u, err)
	}
	cases := []struct{ in, scheme, want string }{
		{"127.0.0.1:8125", "udp", `"127.0.0.1:8125" needs a scheme: udp://127.0.0.1:8125`},
		{"vm:8428/api/v1/write", "http", `"vm:8428/api/v1/write" needs a scheme: http://vm:8428/api/v1/write`},
		{"user:pw@vm:8428", "http", `"xxxxx@vm:8428" needs a scheme: http://xxxxx@vm:8428`},
		{"udp://127.0.0.1:99999", "udp", `"udp://127.0.0.1:99999": port 99999 is out of range (0 to 65535)`},
		{"http://user:pw@h:1/%zz", "http", `"http://xxxxx@h:1/%zz" is not a valid URL: invalid URL escape "%zz"`},
	}
	for _, c := range cases {
		_, err := ParseURL(c.in, c.scheme)
		if err == nil || err.Error() != c.want {
			t.Errorf("ParseURL(%q) = %v, want %q", c.in, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("ParseURL(%q) error leaks the password: %v", c.in, err)
		}
	}
}

func TestRedactError(t *testing.T) {
	resp, err := (&http.Client{}).Get("http://127.0.0.1:0/w?token=s3cret")
	if err == nil {
		resp.Body.Close()
		t.Fatal("GET to port 0 succeeded")
	}
	if got := fmt.Errorf("flush: %w", RedactError(err)).Error(); strings.Contains(got, "s3cret") || !strings.Contains(got, "token=xxxxx") {
		t.Errorf("RedactError: %s", got)
	}
}
