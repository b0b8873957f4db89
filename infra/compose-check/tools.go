// The compose-check wrapper module: main.go is the program; this file only pins what it builds from.
package main
