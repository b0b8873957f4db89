//go:build tools

// Package tools pins the etcd server's main package, so `go build go.etcd.io/etcd/server/v3` builds it here.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
)
