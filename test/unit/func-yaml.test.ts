import { expect } from 'chai';
import AjvDraft04 from 'ajv-draft-04';
import { parse } from 'yaml';
import { readRepoFile } from '../helpers/paths.ts';

/** Validates against knative/func's own JSON schema (draft-04, vendored in test/schemas). */
function validator() {
  const schema = JSON.parse(readRepoFile('test/schemas/func_yaml-schema.json')) as Record<string, unknown>;
  // ajv-draft-04 is CommonJS: under Node's ESM interop its class is the module's `default`.
  const Ajv = AjvDraft04.default;
  const ajv = new Ajv({ allErrors: true, strict: false });
  ajv.addFormat('date-time', (s: string) => !Number.isNaN(Date.parse(s)));
  return ajv.compile(schema);
}

/** func.yaml as func reads it: YAML 1.2 core schema, so `created` stays a string. */
const funcYaml = () => parse(readRepoFile('func.yaml')) as Record<string, unknown>;

describe('func.yaml', function () {
  const validate = validator();

  it('is valid against the func.yaml JSON schema (specVersion 0.36.0)', function () {
    const doc = funcYaml();
    const ok = validate(doc);
    expect(ok, JSON.stringify(validate.errors, null, 1)).to.equal(true);
    expect(doc['specVersion']).to.equal('0.36.0');
    expect(doc['created']).to.be.a('string');
  });

  it('the validator refuses what func would: an unknown key and a non-string created', function () {
    expect(validate({ ...funcYaml(), replicas: 3 })).to.equal(false);
    expect(validate({ ...funcYaml(), created: new Date() })).to.equal(false);
  });

  it('builds TypeScript with the pack builder and deploys as job-robot, scale to zero; no subscription of its own (the Trigger in config/broker.yaml carries the OIDC audience)', function () {
    const doc = funcYaml() as {
      runtime: string;
      build: { buildEnvs: Array<{ name: string; value: string }> };
      deploy: {
        serviceAccountName: string;
        options: { scale: { min: number } };
        healthEndpoints: Record<string, string>;
        subscriptions?: unknown;
        labels: Array<{ key: string; value: string }>;
      };
    };
    expect(doc.runtime).to.equal('typescript');
    expect(doc.build.buildEnvs).to.deep.include({ name: 'BP_NODE_RUN_SCRIPTS', value: 'build' });
    expect(doc.deploy.serviceAccountName).to.equal('job-robot');
    expect(doc.deploy.options.scale.min).to.equal(0);
    expect(doc.deploy.healthEndpoints).to.deep.equal({ liveness: '/health/liveness', readiness: '/health/readiness' });
    // kn func's own Trigger would set no audience (so Knative sends no token and the launcher
    // refuses it) and no jobrobot filter; config/broker.yaml's Trigger has both.
    expect(doc.deploy.subscriptions).to.equal(undefined);
    expect(doc.deploy.labels, 'private, as config/launcher.yaml').to.deep.include({ key: 'networking.knative.dev/visibility', value: 'cluster-local' });
  });
});
