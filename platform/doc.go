// Package platform will hold the 梧桐PaaS platform core: the app model, offline app packages (the bundle format
// with an app manifest), the store, the HTTP API and console, and the Kubernetes deployer. Nothing is implemented
// yet; see the open issues.
package platform
