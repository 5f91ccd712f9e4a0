package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
)

// Record is one acknowledged batch as the import endpoint received it.
type Record struct {
	// Key is the batch's Idempotency-Key.
	Key string
	// IntervalStart and Interval are the batch's own (wire header).
	IntervalStart time.Time
	Interval      time.Duration
	// Received is when the global took the batch; it restarts the key's
	// dedup window on replay.
	Received time.Time
	// Encoding is the Content-Encoding the body came with.
	Encoding Encoding
	// Body is the request body as sent (still compressed).
	Body []byte
}

// Encoding is a body's Content-Encoding, as one byte on disk.
type Encoding uint8

const (
	Identity Encoding = 0
	Zstd     Encoding = 1
	Gzip     Encoding = 2
)

// Segment and record layout (journal/FORMAT.md).
const (
	segmentMagic = "VLJ1"
	// headerSize is the magic and the window start (int64 nanoseconds).
	headerSize = 4 + 8
	// frameSize is a record's length and CRC.
	frameSize = 4 + 4
	// fixedPayload is a payload's fixed fields after the key length:
	// interval start, interval, received (int64 each) and the encoding.
	fixedPayload = 8 + 8 + 8 + 1
	// MaxKeyBytes bounds a record's key, as the import endpoint does.
	MaxKeyBytes = 255
	// MaxRecordBytes bounds a record's payload: far above any body the
	// import endpoint takes, low enough that a corrupt length is caught.
	MaxRecordBytes = 256 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errTorn is what ends a segment's replay early: a record cut short, or
// whose CRC or fields do not check.
var errTorn = errors.New("torn or corrupt record")

// appendHeader appends a segment's header for the window starting at start.
func appendHeader(dst []byte, start time.Time) []byte {
	dst = append(dst, segmentMagic...)
	return binary.BigEndian.AppendUint64(dst, uint64(start.UnixNano()))
}

// parseHeader returns the window start a segment's header names.
func parseHeader(b []byte) (time.Time, error) {
	if len(b) < headerSize || string(b[:4]) != segmentMagic {
		return time.Time{}, fmt.Errorf("segment header: %w", errTorn)
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(b[4:12]))), nil
}

// encodedSize is the bytes rec takes on disk, frame included.
func encodedSize(rec *Record) int {
	return frameSize + 1 + len(rec.Key) + fixedPayload + len(rec.Body)
}

// appendRecordHead appends rec's frame and payload up to the body, the CRC
// covering the body too: written before rec.Body, it makes the record
// without copying the body.
func appendRecordHead(dst []byte, rec *Record) ([]byte, error) {
	if len(rec.Key) == 0 || len(rec.Key) > MaxKeyBytes {
		return dst, fmt.Errorf("journal record key of %d bytes: want 1 to %d", len(rec.Key), MaxKeyBytes)
	}
	n := encodedSize(rec) - frameSize
	if n > MaxRecordBytes {
		return dst, fmt.Errorf("journal record of %d bytes: at most %d", n, MaxRecordBytes)
	}
	at := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(n))
	dst = binary.LittleEndian.AppendUint32(dst, 0) // the CRC, once the payload is in
	payload := len(dst)
	dst = append(dst, byte(len(rec.Key)))
	dst = append(dst, rec.Key...)
	dst = binary.BigEndian.AppendUint64(dst, uint64(rec.IntervalStart.UnixNano()))
	dst = binary.BigEndian.AppendUint64(dst, uint64(rec.Interval))
	dst = binary.BigEndian.AppendUint64(dst, uint64(rec.Received.UnixNano()))
	dst = append(dst, byte(rec.Encoding))
	crc := crc32.Update(crc32.Checksum(dst[payload:], castagnoli), castagnoli, rec.Body)
	binary.LittleEndian.PutUint32(dst[at+4:], crc)
	return dst, nil
}

// parseRecord reads the record at the start of b into rec, whose Key and
// Body then point into b, and returns its size on disk. A record cut short
// or that does not check returns errTorn.
func parseRecord(b []byte, rec *Record) (int, error) {
	if len(b) < frameSize {
		return 0, errTorn
	}
	n := int(binary.LittleEndian.Uint32(b))
	if n < 1+1+fixedPayload || n > MaxRecordBytes || len(b)-frameSize < n {
		return 0, errTorn
	}
	payload := b[frameSize : frameSize+n]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return 0, errTorn
	}
	keyLen := int(payload[0])
	if keyLen == 0 || 1+keyLen+fixedPayload > n {
		return 0, errTorn
	}
	p := payload[1+keyLen:]
	enc := Encoding(p[24])
	if enc > Gzip {
		return 0, errTorn
	}
	*rec = Record{
		Key:           string(payload[1 : 1+keyLen]),
		IntervalStart: time.Unix(0, int64(binary.BigEndian.Uint64(p))),
		Interval:      time.Duration(binary.BigEndian.Uint64(p[8:])),
		Received:      time.Unix(0, int64(binary.BigEndian.Uint64(p[16:]))),
		Encoding:      enc,
		Body:          p[fixedPayload:],
	}
	return frameSize + n, nil
}
