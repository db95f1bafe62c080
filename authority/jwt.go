package authority

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"strings"
)

// MaxTokenSize bounds every JWT this package parses (access tokens, client
// assertions, federated tokens). Anything longer is rejected before it is
// decoded or hashed.
const MaxTokenSize = 16 << 10

// Signature algorithms. Only these are ever accepted; "none" and the HMAC
// family never are.
const (
	AlgES256 = "ES256"
	AlgRS256 = "RS256"
	AlgPS256 = "PS256"
)

var b64 = base64.RawURLEncoding

// jwtHeader holds the header fields this package reads.
type jwtHeader struct {
	Alg       string   `json:"alg"`
	Kid       string   `json:"kid"`
	Typ       string   `json:"typ"`
	X5t       string   `json:"x5t"`
	X5tS256   string   `json:"x5t#S256"`
	Crit      []string `json:"crit"`
	X5c       []string `json:"x5c"`
	headerRaw []byte
}

// compactJWT is a parsed, not yet verified, compact JWS.
type compactJWT struct {
	header       jwtHeader
	payload      []byte
	signature    []byte
	signingInput string
}

var errMalformed = errors.New("malformed JWT")

// parseCompact splits and decodes a compact JWS. It checks shape only:
// three base64url parts, a JSON object header with an alg, no crit.
func parseCompact(raw string) (*compactJWT, error) {
	if len(raw) > MaxTokenSize {
		return nil, errors.New("token too large")
	}
	i := strings.IndexByte(raw, '.')
	j := strings.LastIndexByte(raw, '.')
	if i <= 0 || j == i || j == len(raw)-1 || strings.Count(raw, ".") != 2 {
		return nil, errMalformed
	}
	hb, err := b64.DecodeString(raw[:i])
	if err != nil {
		return nil, errMalformed
	}
	payload, err := b64.DecodeString(raw[i+1 : j])
	if err != nil {
		return nil, errMalformed
	}
	sig, err := b64.DecodeString(raw[j+1:])
	if err != nil {
		return nil, errMalformed
	}
	t := &compactJWT{payload: payload, signature: sig, signingInput: raw[:j]}
	if err := strictUnmarshal(hb, &t.header); err != nil || t.header.Alg == "" {
		return nil, errMalformed
	}
	if len(t.header.Crit) > 0 {
		return nil, errors.New("unsupported critical header")
	}
	t.header.headerRaw = hb
	return t, nil
}

// strictUnmarshal decodes one JSON object and rejects trailing data.
func strictUnmarshal(b []byte, v any) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return errMalformed
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errMalformed
	}
	return nil
}

// verifySignature checks sig over input with pub for alg. The caller has
// already restricted alg to what it allows; the key type must match the
// algorithm (an RSA key never verifies an ES256 signature and vice versa,
// and no symmetric algorithm exists here at all).
func verifySignature(alg string, pub crypto.PublicKey, input string, sig []byte) error {
	sum := sha256.Sum256([]byte(input))
	switch alg {
	case AlgES256:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || k.Curve.Params().BitSize != 256 || len(sig) != 64 {
			return errors.New("bad ES256 signature")
		}
		r := new(big.Int).SetBytes(sig[:32])
		s := new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(k, sum[:], r, s) {
			return errors.New("bad ES256 signature")
		}
		return nil
	case AlgRS256:
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return errors.New("bad RS256 signature")
		}
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, sum[:], sig)
	case AlgPS256:
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return errors.New("bad PS256 signature")
		}
		return rsa.VerifyPSS(k, crypto.SHA256, sum[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	}
	return errors.New("algorithm not allowed")
}

// sign produces the JWS signature of input with key for its algorithm.
func (k *signingKey) sign(random io.Reader, input []byte) ([]byte, error) {
	sum := sha256.Sum256(input)
	switch k.alg {
	case AlgES256:
		r, s, err := ecdsa.Sign(random, k.ec, sum[:])
		if err != nil {
			return nil, err
		}
		sig := make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return sig, nil
	case AlgRS256:
		return rsa.SignPKCS1v15(random, k.rsa, crypto.SHA256, sum[:])
	}
	return nil, errors.New("authority: unknown signing algorithm " + k.alg)
}

// decodeThumbprint decodes an x5t or x5t#S256 value in either base64
// alphabet, padded or not (MSAL Go sends standard base64, MSAL Node and
// Python base64url).
func decodeThumbprint(s string, size int) []byte {
	if s == "" {
		return nil
	}
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.StdEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == size {
			return b
		}
	}
	return nil
}
