// Package images does all things OCI for wutong-offline: it resolves images
// from their sources (a registry, an OCI image layout, a `docker save`
// archive, or per-arch Go binaries wrapped into an image the way ko does),
// narrows them to the arches a bundle carries, and writes them into one OCI
// image layout with blobs shared across images and arches stored once.
//
// It is built on go-containerregistry types: a resolved image is a
// v1.ImageIndex with exactly one linux image manifest per requested arch.
package images
