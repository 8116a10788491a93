package pullmodel

import (
	"context"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/oci-client/liboci/cache"
	"github.com/oci-client/liboci/model"
	"github.com/oci-client/liboci/oci"
)

// resolved is the model manifest a reference led to.
type resolved struct {
	digest    string
	mediaType string
	raw       []byte
	model     *model.Model
	config    []byte
}

// resolve finds the model manifest: from the cache where that needs no
// network (a digest reference, or any reference offline), else with one
// manifest request (two through an index, whose children are stored by
// digest and so come from the cache the next time).
func (p *puller) resolve(ctx context.Context) (*resolved, error) {
	d, mt, raw, err := p.topManifest(ctx)
	if err != nil {
		return nil, err
	}
	if model.IsIndex(mt, raw) {
		desc, err := model.SelectManifest(raw, p.o.Select)
		if err != nil {
			return nil, classify(err)
		}
		d = desc.Digest
		if mt, raw, err = p.manifestByDigest(ctx, d); err != nil {
			return nil, err
		}
	}
	m, err := model.Parse(raw, mt)
	if err != nil {
		return nil, classify(err)
	}
	res := &resolved{digest: d, mediaType: mt, raw: raw, model: m}
	{
		// Some configs say where files go or what they are (KitOps' Kitfile,
		// ModelPack's format); it is small, and cached with the model.
		if res.config, err = p.readConfig(ctx, m.Config); err != nil {
			return nil, err
		}
		if res.config != nil {
			if res.model, err = model.ParseWithConfig(raw, mt, res.config); err != nil {
				return nil, classify(err)
			}
		}
	}
	return res, nil
}

// maxConfig bounds the config blobs read into memory.
const maxConfig = 4 << 20

// readConfig returns the config blob (through the cache), or nil when it
// is too large to be a model config, or offline and not cached.
func (p *puller) readConfig(ctx context.Context, cfg model.Descriptor) ([]byte, error) {
	if cfg.Digest == "" || cfg.Size > maxConfig {
		return nil, nil
	}
	if _, _, err := cache.SplitDigest(cfg.Digest); err != nil {
		return nil, wrap(oci.CodeInvalidModel, err)
	}
	w := p.blobWant(cfg.Digest, cfg.Size, "config")
	if p.o.Offline {
		if ok, err := w.present(ctx); err != nil || !ok {
			return nil, err
		}
	} else if err := p.ensure(ctx, []want{w}); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(w.path)
	if err != nil {
		return nil, wrap(oci.CodeIO, err)
	}
	return data, nil
}

func (p *puller) topManifest(ctx context.Context) (d, mt string, raw []byte, err error) {
	if dr, ok := p.ref.(name.Digest); ok {
		d = dr.DigestStr()
		mt, raw, err = p.manifestByDigest(ctx, d)
		return d, mt, raw, err
	}
	tag := p.ref.Identifier()
	reg, repo := p.repo.RegistryStr(), p.repo.RepositoryStr()
	if p.o.Offline {
		d, err := p.cache.ReadRef(reg, repo, tag)
		if err != nil {
			return "", "", nil, wrap(oci.CodeIO, err)
		}
		if d == "" {
			return "", "", nil, notCached(p.ref.Name(), "", "%s is not in the cache at %s", p.ref.Name(), p.cache.Root)
		}
		mt, raw, ok, err := p.cache.GetManifest(d)
		if err != nil {
			return "", "", nil, wrap(oci.CodeIO, err)
		}
		if !ok {
			return "", "", nil, notCached(p.ref.Name(), d, "the manifest %s of %s is not in the cache at %s", d, p.ref.Name(), p.cache.Root)
		}
		return d, mt, raw, nil
	}
	m, err := p.client.PullManifest(ctx, p.ref.String())
	if err != nil {
		return "", "", nil, err
	}
	if err := p.store(m); err != nil {
		return "", "", nil, err
	}
	if cur, _ := p.cache.ReadRef(reg, repo, tag); cur != m.Digest {
		if err := p.cache.WriteRef(reg, repo, tag, m.Digest); err != nil {
			return "", "", nil, wrap(oci.CodeIO, err)
		}
	}
	return m.Digest, m.MediaType, m.Raw, nil
}

// store keeps a fetched manifest, unless the cache has it already (a
// repeat pull then writes nothing but the snapshot's time of use).
func (p *puller) store(m *oci.Manifest) error {
	if _, _, ok, _ := p.cache.GetManifest(m.Digest); ok {
		return nil
	}
	return wrap(oci.CodeIO, p.cache.PutManifest(m.Digest, m.MediaType, m.Raw))
}

// manifestByDigest reads a manifest from the cache, else fetches it.
func (p *puller) manifestByDigest(ctx context.Context, d string) (string, []byte, error) {
	mt, raw, ok, err := p.cache.GetManifest(d)
	if err != nil {
		return "", nil, wrap(oci.CodeIO, err)
	}
	if ok {
		return mt, raw, nil
	}
	if p.o.Offline {
		return "", nil, notCached(p.repo.Name(), d, "the manifest %s of %s is not in the cache at %s", d, p.repo.Name(), p.cache.Root)
	}
	m, err := p.client.PullManifest(ctx, p.repo.Digest(d).String())
	if err != nil {
		return "", nil, err
	}
	if err := p.store(m); err != nil {
		return "", nil, err
	}
	return m.MediaType, m.Raw, nil
}
