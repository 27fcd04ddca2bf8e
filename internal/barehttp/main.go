// Command barehttp is the ceiling the like API is measured against: a bare
// net/http handler (the same HTTP stack as likes serve) that reads the
// Authorization header and answers a like-shaped JSON body, doing no work.
// scripts/bench-http.sh runs both under the same load.
package main

import (
	"flag"
	"log"
	"net/http"
	"strconv"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8090", "address")
	flag.Parse()
	body := []byte(`{"liked":true,"post_id":1,"user_id":1}`)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header()["Content-Type"] = []string{"application/json"}
		w.Header()["Content-Length"] = []string{strconv.Itoa(len(body))}
		w.Write(body)
	})
	log.Fatal(http.ListenAndServe(*listen, h))
}
