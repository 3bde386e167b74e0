// SPDX-License-Identifier: MIT
//
// nkeygen: throw-away NATS identities for the bridge's authentication test
// (tests/bridge/run.sh t12), made with Debian's golang-github-nats-io-nkeys-dev
// alone: no nsc, no network, no JWT library (the three JWTs are written by
// hand: a header, the claims, an ed25519 signature by the issuer's nkey).
//
//	nkeygen DIR
//
// writes into DIR (secrets mode 0600):
//
//	user.pub, user.nk    a user nkey: its public key and its seed
//	operator.jwt         a self-signed operator
//	account.pub          an account's public key
//	account.jwt          the account, signed by the operator
//	user.creds           the user's JWT, signed by the account, and its seed
//
// A nats-server with "operator: DIR/operator.jwt", "resolver: MEMORY" and
// the account JWT in resolver_preload accepts user.creds.
package main

import (
	"crypto/sha512"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nkeys"
)

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "nkeygen:", err)
		os.Exit(1)
	}
}

// encode signs claims (a JWT v2 as nats-server 2.9's jwt library reads it)
func encode(issuer nkeys.KeyPair, sub, name string, nats map[string]interface{}) string {
	iss, err := issuer.PublicKey()
	check(err)
	claims := map[string]interface{}{
		"jti":  "",
		"iat":  time.Now().Unix(),
		"iss":  iss,
		"sub":  sub,
		"name": name,
		"nats": nats,
	}
	body, err := json.Marshal(claims)
	check(err)
	sum := sha512.Sum512_256(body)
	claims["jti"] = base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:])
	body, err = json.Marshal(claims)
	check(err)
	b64 := base64.RawURLEncoding
	head := b64.EncodeToString([]byte(`{"typ":"JWT","alg":"ed25519-nkey"}`))
	toSign := head + "." + b64.EncodeToString(body)
	sig, err := issuer.Sign([]byte(toSign))
	check(err)
	return toSign + "." + b64.EncodeToString(sig)
}

func write(dir, name, content string, mode os.FileMode) {
	check(os.WriteFile(filepath.Join(dir, name), []byte(content), mode))
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: nkeygen DIR")
		os.Exit(2)
	}
	dir := os.Args[1]
	op, err := nkeys.CreateOperator()
	check(err)
	acc, err := nkeys.CreateAccount()
	check(err)
	usr, err := nkeys.CreateUser()
	check(err)
	opPub, _ := op.PublicKey()
	accPub, _ := acc.PublicKey()
	usrPub, _ := usr.PublicKey()
	usrSeed, err := usr.Seed()
	check(err)

	opJWT := encode(op, opPub, "uhp-test", map[string]interface{}{
		"type": "operator", "version": 2,
	})
	accJWT := encode(op, accPub, "uhp", map[string]interface{}{
		"limits": map[string]interface{}{
			"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
			"wildcards": true, "conn": -1, "leaf": -1,
		},
		"default_permissions": map[string]interface{}{"pub": map[string]interface{}{}, "sub": map[string]interface{}{}},
		"type":                "account", "version": 2,
	})
	usrJWT := encode(acc, usrPub, "uhp-bridge", map[string]interface{}{
		"pub": map[string]interface{}{}, "sub": map[string]interface{}{},
		"subs": -1, "data": -1, "payload": -1,
		"type": "user", "version": 2,
	})
	creds := fmt.Sprintf("-----BEGIN NATS USER JWT-----\n%s\n------END NATS USER JWT------\n\n"+
		"************************* IMPORTANT *************************\n"+
		"NKEY Seed printed below can be used to sign and prove identity.\n"+
		"NKEYs are sensitive and should be treated as secrets.\n\n"+
		"-----BEGIN USER NKEY SEED-----\n%s\n------END USER NKEY SEED------\n\n"+
		"*************************************************************\n", usrJWT, usrSeed)

	write(dir, "user.pub", usrPub+"\n", 0644)
	write(dir, "user.nk", string(usrSeed)+"\n", 0600)
	write(dir, "operator.jwt", opJWT+"\n", 0644)
	write(dir, "account.pub", accPub+"\n", 0644)
	write(dir, "account.jwt", accJWT+"\n", 0644)
	write(dir, "user.creds", creds, 0600)
}
