// Command kfakebroker runs franz-go's kfake broker in a process of its own,
// so tests can kill it, stop it (SIGSTOP) and restart it on the same port
// like a real broker. With -data-dir its topics, records and groups survive
// a restart. It prints "ready ADDR" once it listens.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	port := flag.Int("port", 0, "port to listen on (0: any free port)")
	topics := flag.String("topics", "", "comma-separated topics to create")
	partitions := flag.Int("partitions", 3, "partitions of each topic")
	dataDir := flag.String("data-dir", "", "persist state here (survives a restart)")
	minSession := flag.Duration("min-session", 6*time.Second, "group.min.session.timeout")
	flag.Parse()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.Ports(*port), kfake.GroupMinSessionTimeout(*minSession)}
	if *topics != "" {
		opts = append(opts, kfake.SeedTopics(int32(*partitions), strings.Split(*topics, ",")...))
	}
	if *dataDir != "" {
		opts = append(opts, kfake.DataDir(*dataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kfakebroker:", err)
		os.Exit(1)
	}
	fmt.Println("ready", c.ListenAddrs()[0])
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	<-sigs
	c.Close()
}
