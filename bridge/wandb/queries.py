"""The GraphQL documents ``wandb-bridge wandb`` sends to W&B, and nothing else.

Operation names are those of W&B's SDK where it has the operation, so W&B sees the same
traffic from both. Each document asks only for fields every current W&B release has; the
``ENTITY_SCOPE`` placeholder in ``TRIGGER`` becomes ``... on Entity { id name }`` only on
servers that have the entity scope (an older server refuses the spread).
"""

_PAGE = "pageInfo { endCursor hasNextPage }"
_WEBHOOK = "__typename ... on GenericWebhookIntegration { id name urlEndpoint }"
TRIGGER = """
fragment BridgeTrigger on Trigger {
  id name description enabled
  scope {
    __typename
    ... on Project { id name }
    ... on ArtifactSequence { id name }
    ... on ArtifactPortfolio { id name }
    ENTITY_SCOPE
  }
  triggeringCondition { __typename ... on FilterEventTriggeringCondition { eventType filter } }
  triggeredAction {
    __typename
    ... on GenericWebhookTriggeredAction { requestPayload integration { WEBHOOK } }
  }
}
""".replace("WEBHOOK", _WEBHOOK)

FEATURES = "query ServerFeaturesQuery { serverInfo { features { name isEnabled } } }"
ENTITY = "query EntityInfo($entity: String!) { entity(name: $entity) { id name } }"
ORG_ENTITY = """query OrgEntity($entity: String!) {
  entity(name: $entity) { organization { orgEntity { name } } } }"""
PROJECT = """query ProjectScope($entity: String!, $project: String!) {
  project(name: $project, entityName: $entity) { id name } }"""
COLLECTION = """query CollectionScope($entity: String!, $project: String!, $collection: String!) {
  project(name: $project, entityName: $entity) {
    id artifactCollection(name: $collection) { __typename id name } } }"""
INTEGRATIONS = f"""query IntegrationsByEntity($entity: String!, $cursor: String, $perPage: Int) {{
  entity(name: $entity) {{ integrations(after: $cursor, first: $perPage) {{
    {_PAGE} edges {{ node {{ {_WEBHOOK} }} }} }} }} }}"""
AUTOMATIONS = f"""query GetEntityAutomations($entity: String!, $cursor: String, $perPage: Int) {{
  entity(name: $entity) {{ triggers(after: $cursor, first: $perPage) {{
    {_PAGE} edges {{ node {{ ...BridgeTrigger }} }} }} }} }}"""
AUTOMATIONS_LEGACY = f"""query GetEntityAutomationsLegacy(
  $entity: String!, $cursor: String, $perPage: Int) {{
  entity(name: $entity) {{ projects(after: $cursor, first: $perPage) {{
    {_PAGE} edges {{ node {{ triggers {{ ...BridgeTrigger }} }} }} }} }} }}"""
SECRETS = "query EntitySecrets($entity: String!) { entity(name: $entity) { secrets { name } } }"
CREATE_INTEGRATION = f"""mutation CreateGenericWebhookIntegration(
  $input: CreateGenericWebhookIntegrationInput!) {{
  createGenericWebhookIntegration(input: $input) {{ integration {{ {_WEBHOOK} }} }} }}"""
CREATE = """mutation CreateAutomation($input: CreateFilterTriggerInput!) {
  createFilterTrigger(input: $input) { trigger { ...BridgeTrigger } } }"""
UPDATE = """mutation UpdateAutomation($input: UpdateFilterTriggerInput!) {
  updateFilterTrigger(input: $input) { trigger { ...BridgeTrigger } } }"""
DELETE = """mutation DeleteAutomation($id: ID!) {
  deleteTrigger(input: {triggerID: $id}) { success } }"""
INSERT_SECRET = """mutation InsertSecret($entity: String!, $name: String!, $value: String!) {
  insertSecret(input: {entityName: $entity, secretName: $name, secretValue: $value}) {
    success } }"""  # noqa: S105 (a GraphQL document)
VERSION = """query ArtifactVersion($entity: String!, $project: String!, $name: String!) {
  project(name: $project, entityName: $entity) {
    artifactCollectionMembership(name: $name) {
      versionIndex aliases { alias } artifact { id metadata } } } }"""
VERSION_LEGACY = """query ArtifactVersionLegacy(
  $entity: String!, $project: String!, $name: String!) {
  project(name: $project, entityName: $entity) {
    artifact(name: $name) { id versionIndex metadata aliases { alias } } } }"""
# The write-back's mutations, as W&B's SDK sends them (``Artifact.save()``).
ADD_ALIASES = """mutation AddAliases($input: AddAliasesInput!) {
  result: addAliases(input: $input) { success } }"""
UPDATE_ARTIFACT = """mutation UpdateArtifact($input: UpdateArtifactInput!) {
  result: updateArtifact(input: $input) { artifact { id } } }"""
# Catch-up's reads of the registry, with the SDK's operation names and fields.
ENTITY_PROJECTS = f"""query EntityProjects($entity: String!, $cursor: String, $perPage: Int) {{
  entity(name: $entity) {{ projects(after: $cursor, first: $perPage) {{
    {_PAGE} edges {{ node {{ name }} }} }} }} }}"""
PROJECT_COLLECTIONS = f"""query ProjectArtifactCollections(
  $entity: String!, $project: String!, $cursor: String, $perPage: Int) {{
  project(entityName: $entity, name: $project) {{
    artifactCollections(after: $cursor, first: $perPage) {{
      {_PAGE} edges {{ node {{ __typename id name }} }} }} }} }}"""
COLLECTION_VERSIONS = f"""query ProjectArtifacts(
  $entity: String!, $project: String!, $collection: String!, $cursor: String, $perPage: Int) {{
  project(entityName: $entity, name: $project) {{
    artifactCollection(name: $collection) {{ __typename id name
      artifacts(after: $cursor, first: $perPage) {{ {_PAGE} edges {{ version node {{
        id versionIndex createdAt metadata tags {{ name }}
        aliases {{ alias artifactCollection {{ name }} }} }} }} }} }} }} }}"""
