package push

import "github.com/google/go-containerregistry/pkg/authn"

func basic(user, pass string) authn.Authenticator {
	return authn.FromConfig(authn.AuthConfig{Username: user, Password: pass})
}
