// Package password makes the passwords Wutong generates for people (the platform's first admin, new users): random,
// and without look-alike characters (0/O, 1/l/I), since field engineers read them off a screen.
package password

import "crypto/rand"

// Alphabet is what generated passwords are made of.
const Alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// Length is the length of a generated password: about 115 bits.
const Length = 20

// Generate returns a new random password of Length characters from Alphabet, uniformly chosen.
func Generate() string {
	b := make([]byte, Length)
	limit := 256 - 256%len(Alphabet)
	var c [1]byte
	for i := 0; i < len(b); {
		rand.Read(c[:]) // never fails on Linux
		if int(c[0]) >= limit {
			continue
		}
		b[i] = Alphabet[int(c[0])%len(Alphabet)]
		i++
	}
	return string(b)
}
