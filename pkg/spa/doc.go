// Package spa is single packet authorization as fwknop 2.6.10 speaks it
// (protocol "3.0.0"): the decoder of one SPA packet (HMAC-SHA256 checked
// first and in constant time, then AES-256-CBC with OpenSSL's
// EVP_BytesToKey key derivation, then the message fields), a replay cache
// bounded in memory and kept on disk across restarts, and the table of
// open grants a valid packet creates.
//
// The format is implemented from fwknop's documentation and the facts of
// its wire format, not from any of its implementations:
//
//	wire    = b64(ciphertext without "Salted__") ‖ b64(HMAC), "=" stripped,
//	          the leading "U2FsdGVkX1" of the ciphertext's base64 removed
//	HMAC    = HMAC-SHA256(hmac_key, "U2FsdGVkX1" ‖ b64(ciphertext without "Salted__"))
//	cipher  = "Salted__" ‖ salt[8] ‖ AES-256-CBC(key, iv, PKCS#7(plain))
//	key, iv = EVP_BytesToKey(MD5, one round, aes_key, salt)
//	plain   = rand16 : b64(user) : timestamp : version : type : b64(access)
//	          [: b64(nat)] [: b64(server_auth)] [: client_timeout] : b64(SHA-256 of all that)
//
// Nothing here opens a socket: the engine hands it the payload of a UDP
// packet the kernel queued on the input path.
package spa
