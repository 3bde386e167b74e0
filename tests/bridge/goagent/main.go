// SPDX-License-Identifier: MIT
//
// goagent: a remote agent written with the standard NATS Go client (Debian's
// golang-github-nats-io-go-nats-dev), talking to uhp agents through
// uhp-bridge. It speaks the bridge's wire format (bridge/README.md): the
// payload is the record's payload, the headers carry the record's meta and
// its CRC32C, computed as uhp_rx.crc documents it.
//
//	goagent send URL SUBJECT N [core|js]   publish N records (src 4242, seq 1..N)
//	goagent recv URL SUBJECT N TIMEOUT_MS  receive N records, check CRC, payload, order
//
// The payload pattern is bridge_agent's, so either side can check the other.
package main

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func pat(seq uint64, src uint32, i uint32) byte {
	x := seq*0x9E3779B97F4A7C15 + uint64(src)*0x85EBCA6B + uint64(i)
	x ^= x >> 29
	return byte((x * 0xBF58476D1CE4E5B9) >> 56)
}

func payload(seq uint64, src uint32, n uint32) []byte {
	p := make([]byte, n)
	binary.LittleEndian.PutUint64(p[0:], seq)
	binary.LittleEndian.PutUint32(p[8:], src)
	binary.LittleEndian.PutUint32(p[12:], n)
	for i := uint32(16); i < n; i++ {
		p[i] = pat(seq, src, i)
	}
	return p
}

// recCRC: CRC32C of len, type, flags, src, dst, seq (little-endian) then the payload.
func recCRC(typ, flags uint16, src, dst uint32, seq uint64, p []byte) uint32 {
	h := make([]byte, 24, 24+len(p))
	binary.LittleEndian.PutUint32(h[0:], uint32(len(p)))
	binary.LittleEndian.PutUint16(h[4:], typ)
	binary.LittleEndian.PutUint16(h[6:], flags)
	binary.LittleEndian.PutUint32(h[8:], src)
	binary.LittleEndian.PutUint32(h[12:], dst)
	binary.LittleEndian.PutUint64(h[16:], seq)
	return crc32.Checksum(append(h, p...), castagnoli)
}

func die(f string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "goagent: "+f+"\n", a...)
	os.Exit(1)
}

func send(url, subj string, n int, mode string) {
	nc, err := nats.Connect(url)
	if err != nil {
		die("connect: %v", err)
	}
	defer nc.Close()
	var js nats.JetStreamContext
	if mode == "js" {
		if js, err = nc.JetStream(nats.PublishAsyncMaxPending(1024)); err != nil {
			die("jetstream: %v", err)
		}
	}
	inst := fmt.Sprintf("%016x", rand.New(rand.NewSource(time.Now().UnixNano())).Uint64())
	const src = 4242
	for i := 1; i <= n; i++ {
		seq := uint64(i)
		p := payload(seq, src, uint32(16+i%200))
		m := nats.NewMsg(subj)
		m.Data = p
		link := "go/goagent/" + inst + "/" + strconv.Itoa(i)
		m.Header.Set("Uhp-Src", strconv.Itoa(src))
		m.Header.Set("Uhp-Dst", "0")
		m.Header.Set("Uhp-Type", "7")
		m.Header.Set("Uhp-Seq", strconv.FormatUint(seq, 10))
		m.Header.Set("Uhp-Crc", fmt.Sprintf("%08x", recCRC(7, 0, src, 0, seq, p)))
		m.Header.Set("Uhp-Link", link)
		if js != nil {
			if _, err := js.PublishMsgAsync(m, nats.MsgId(link)); err != nil {
				die("publish: %v", err)
			}
		} else if err := nc.PublishMsg(m); err != nil {
			die("publish: %v", err)
		}
	}
	if js != nil {
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(30 * time.Second):
			die("publish acks: timeout")
		}
	}
	if err := nc.Flush(); err != nil {
		die("flush: %v", err)
	}
	fmt.Printf("{\"go_sent\":%d,\"mode\":\"%s\"}\n", n, mode)
}

func recv(url, subj string, n int, timeout time.Duration) {
	nc, err := nats.Connect(url)
	if err != nil {
		die("connect: %v", err)
	}
	defer nc.Close()
	ch := make(chan *nats.Msg, 65536)
	sub, err := nc.ChanSubscribe(subj, ch)
	if err != nil {
		die("subscribe: %v", err)
	}
	sub.SetPendingLimits(-1, -1)
	nc.Flush()
	fmt.Fprintln(os.Stderr, "goagent: subscribed")
	got, bad, badcrc, order := 0, 0, 0, 0
	next := map[uint32]uint64{}
	deadline := time.After(timeout)
loop:
	for got < n {
		select {
		case m := <-ch:
			num := func(k string) uint64 {
				v, err := strconv.ParseUint(m.Header.Get(k), 10, 64)
				if err != nil {
					return 0
				}
				return v
			}
			src, dst, typ, seq := uint32(num("Uhp-Src")), uint32(num("Uhp-Dst")), uint16(num("Uhp-Type")), num("Uhp-Seq")
			flags := uint16(num("Uhp-Flags"))
			want, err := strconv.ParseUint(m.Header.Get("Uhp-Crc"), 16, 32)
			if err != nil || uint32(want) != recCRC(typ, flags, src, dst, seq, m.Data) {
				badcrc++
				continue
			}
			p := m.Data
			if len(p) < 16 || binary.LittleEndian.Uint64(p) != seq || binary.LittleEndian.Uint32(p[8:]) != src {
				bad++
				continue
			}
			for i := uint32(16); i < uint32(len(p)); i++ {
				if p[i] != pat(seq, src, i) {
					bad++
					continue loop
				}
			}
			if e, ok := next[src]; ok && seq != e {
				order++
			}
			next[src] = seq + 1
			got++
		case <-deadline:
			break loop
		}
	}
	fmt.Printf("{\"go_received\":%d,\"expected\":%d,\"bad_crc\":%d,\"bad_payload\":%d,\"out_of_order\":%d}\n",
		got, n, badcrc, bad, order)
	if got != n || bad != 0 || badcrc != 0 || order != 0 {
		os.Exit(1)
	}
}

func main() {
	if len(os.Args) < 5 {
		die("usage: goagent send URL SUBJECT N [core|js] | recv URL SUBJECT N TIMEOUT_MS")
	}
	n, _ := strconv.Atoi(os.Args[4])
	switch os.Args[1] {
	case "send":
		mode := "core"
		if len(os.Args) > 5 {
			mode = os.Args[5]
		}
		send(os.Args[2], os.Args[3], n, mode)
	case "recv":
		ms := 30000
		if len(os.Args) > 5 {
			ms, _ = strconv.Atoi(os.Args[5])
		}
		recv(os.Args[2], os.Args[3], n, time.Duration(ms)*time.Millisecond)
	default:
		die("unknown command %s", os.Args[1])
	}
}
