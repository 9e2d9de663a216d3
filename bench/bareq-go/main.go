//go:build linux

// Command bareq-go is a benchmark baseline: the plainest NFQUEUE consumer
// written with github.com/florianl/go-nfqueue/v2 as its documentation shows.
// It accepts every queued packet with one verdict message per packet,
// setting the given mark (the ruleset's ACCEPTED mark, so that the flow is
// fast-pathed afterwards exactly as after a picoseg verdict). It judges
// nothing: it measures what the library, used naively, costs per packet.
//
// The benchmark harness installs picoseg's ruleset before starting it, so
// only the consumer differs between the runs it compares.
//
//	bareq-go -queue-base 4200 -queues 2 -mark 0x20000 [-fail-open]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	nfqueue "github.com/florianl/go-nfqueue/v2"
	"golang.org/x/sys/unix"
)

func main() {
	base := flag.Uint("queue-base", 4200, "first queue number")
	queues := flag.Int("queues", 2, "number of queues, one goroutine each")
	mark := flag.Uint("mark", 0, "packet mark to set with each verdict (0: none)")
	failOpen := flag.Bool("fail-open", true, "accept packets when the queue is full")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var wg sync.WaitGroup
	var counts = make([]uint64, *queues)
	for i := 0; i < *queues; i++ {
		flags := uint32(nfqueue.NfQaCfgFlagGSO)
		if *failOpen {
			flags |= nfqueue.NfQaCfgFlagFailOpen
		}
		nf, err := nfqueue.Open(&nfqueue.Config{
			NfQueue: uint16(*base) + uint16(i), MaxPacketLen: 512, MaxQueueLen: 1024,
			Copymode: nfqueue.NfQnlCopyPacket, Flags: flags, AfFamily: unix.AF_INET, WriteTimeout: time.Second,
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "bareq-go:", err)
			os.Exit(1)
		}
		defer nf.Close()
		nf.Con.SetReadBuffer(8 << 20)
		hook := func(a nfqueue.Attribute) int {
			if a.PacketID == nil {
				return 0
			}
			counts[i]++
			if *mark != 0 {
				nf.SetVerdictWithOption(*a.PacketID, nfqueue.NfAccept, nfqueue.WithMark(uint32(*mark)))
			} else {
				nf.SetVerdict(*a.PacketID, nfqueue.NfAccept)
			}
			return 0
		}
		errfn := func(err error) int {
			if ctx.Err() != nil {
				return 1
			}
			return 0 // ENOBUFS and the like: keep reading
		}
		if err := nf.RegisterWithErrorFunc(ctx, hook, errfn); err != nil {
			fmt.Fprintln(os.Stderr, "bareq-go:", err)
			os.Exit(1)
		}
		wg.Add(1)
		go func() { defer wg.Done(); <-ctx.Done() }()
	}
	fmt.Println("ready")
	wg.Wait()
	var total uint64
	for _, c := range counts {
		total += c
	}
	fmt.Printf("packets %d\n", total)
}
