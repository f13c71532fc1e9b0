// Package platform is the 梧桐PaaS platform core. Its work lives in the sub-packages, each named for what it holds:
// app (the app model), appkg (offline app packages), store (persistence), auth (who may do what), importer (taking
// packages in), server (`wutong serve`), api (the wire types) and client (what `wtctl app` calls). The map and the
// contracts between them are in docs/platform-core.md.
package platform
