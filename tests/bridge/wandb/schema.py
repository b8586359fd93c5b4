"""The part of W&B's GraphQL schema that automations and the registry touch, for the
stand-in server.

Type, field and argument names are W&B's, as its SDK's automation documents use them
(``Trigger``, ``triggeringCondition``, ``FilterEventTriggeringCondition``,
``createFilterTrigger(input: CreateFilterTriggerInput!)``, ...) and, for the registry,
as the SDK's artifact documents use them (``ArtifactMembershipByName``, ``ArtifactByID``,
``ProjectArtifacts``, ``ProjectArtifactCollections``, ``AddAliases``, ``DeleteAliases``,
``UpdateArtifact``), so a document that would fail W&B's validation fails here. Lines
marked ``# new`` exist only on current servers (an old W&B Server has no
``Entity.triggers``, no feature list and no entity scope), lines marked ``# old`` only on
old ones, and ``# secrets`` only where the secret store is on. ``JSONString`` takes only
text that is JSON, as W&B's does.
"""

from __future__ import annotations

import json
import re
from typing import Any

from graphql import GraphQLError, GraphQLSchema, StringValueNode, ValueNode, build_schema

SDL = """
scalar JSONString
scalar DateTime

enum EventTriggeringConditionType {
  ADD_ARTIFACT_ALIAS ADD_ARTIFACT_TAG ADD_COLLECTION_TAG CREATE_ARTIFACT LINK_MODEL
  REMOVE_ARTIFACT_TAG REMOVE_COLLECTION_TAG RUN_METRIC RUN_METRIC_CHANGE RUN_METRIC_ZSCORE
  RUN_STATE UNLINK_ARTIFACT UPDATE_ARTIFACT_ALIAS
}
enum TriggerScopeType { ARTIFACT_COLLECTION ENTITY PROJECT }
enum TriggeredActionType { GENERIC_WEBHOOK NOTIFICATION NO_OP PUSH_NOTIFICATION QUEUE_JOB }
enum AlertSeverity { ERROR INFO WARN }
enum ArtifactState { COMMITTED DELETED PENDING }
enum ArtifactDigestAlgorithm { MANIFEST_MD5 }

type Query {
  viewer: User
  serverInfo: ServerInfo
  entity(name: String!): Entity
  project(name: String!, entityName: String): Project
  artifact(id: ID!): Artifact
  artifactCollection(id: ID!): ArtifactCollection
}

type ServerInfo {
  features: [ServerFeature!]!  # new
  latestLocalVersionInfo: String
}
type ServerFeature { name: String! isEnabled: Boolean! }

type User {
  id: ID!
  organizations: [Organization!]!
  username: String
  entity: String
  email: String
  flags: JSONString
  teams: EntityConnection
  projects(after: String, first: Int): ProjectConnection
}
type EntityConnection { edges: [EntityEdge!]! }
type EntityEdge { node: Entity }

type Entity {
  id: ID!
  name: String!
  entityType: String
  organization: Organization
  user: User  # a personal entity's user (a team has none)
  projects(after: String, first: Int, order: String): ProjectConnection
  triggers(after: String, first: Int, order: String, filters: JSONString): TriggerConnection  # new
  integrations(after: String, first: Int): IntegrationConnection
  secrets: [Secret!]!  # secrets
}
type Organization { id: ID! name: String! orgEntity: Entity }
type Secret { name: String! createdAt: DateTime! }

type PageInfo { endCursor: String hasNextPage: Boolean! }
type ProjectConnection { pageInfo: PageInfo! edges: [ProjectEdge!]! }
type ProjectEdge { node: Project cursor: String! }
type Project {
  id: ID!
  internalId: ID!
  name: String!
  entity: Entity!
  readOnly: Boolean
  triggers: [Trigger!]!
  artifactType(name: String!): ArtifactType
  artifactCollections(
    after: String
    first: Int
    filters: JSONString
    order: String
  ): ArtifactCollectionConnection!
  artifactCollection(name: String!): ArtifactCollection
  artifactCollectionMembership(name: String!): ArtifactCollectionMembership  # new
  artifact(name: String!): Artifact
}
type ArtifactType {
  id: ID!
  name: String!
  artifactCollection(name: String!): ArtifactCollection
  artifactCollections(
    after: String
    first: Int
    filters: JSONString
    order: String
  ): ArtifactCollectionConnection!
}
type ArtifactCollectionConnection {
  totalCount: Int!
  pageInfo: PageInfo!
  edges: [ArtifactCollectionEdge!]!
}
type ArtifactCollectionEdge { node: ArtifactCollection cursor: String! }

interface ArtifactCollection {
  id: ID!
  name: String!
  description: String
  createdAt: DateTime!
  updatedAt: DateTime
  project: Project
  defaultArtifactType: ArtifactType!
  tags: TagConnection!
  artifacts(
    after: String
    first: Int
    order: String
    filters: JSONString
  ): VersionedArtifactConnection
  aliases(after: String, first: Int): ArtifactAliasConnection!
}
type ArtifactSequence implements ArtifactCollection {
  id: ID!
  name: String!
  description: String
  createdAt: DateTime!
  updatedAt: DateTime
  project: Project
  defaultArtifactType: ArtifactType!
  tags: TagConnection!
  artifacts(
    after: String
    first: Int
    order: String
    filters: JSONString
  ): VersionedArtifactConnection
  aliases(after: String, first: Int): ArtifactAliasConnection!
}
type ArtifactPortfolio implements ArtifactCollection {
  id: ID!
  name: String!
  description: String
  createdAt: DateTime!
  updatedAt: DateTime
  project: Project
  defaultArtifactType: ArtifactType!
  tags: TagConnection!
  artifacts(
    after: String
    first: Int
    order: String
    filters: JSONString
  ): VersionedArtifactConnection
  aliases(after: String, first: Int): ArtifactAliasConnection!
}
type Tag { id: ID! name: String! }
type TagConnection { edges: [TagEdge!]! }
type TagEdge { node: Tag! }
type ArtifactAlias { id: ID! alias: String! artifactCollection: ArtifactCollection }
type ArtifactAliasConnection { pageInfo: PageInfo! edges: [ArtifactAliasEdge!]! }
type ArtifactAliasEdge { node: ArtifactAlias cursor: String! }
type VersionedArtifactConnection {
  totalCount: Int!
  pageInfo: PageInfo!
  edges: [VersionedArtifactEdge!]!
}
type VersionedArtifactEdge { node: Artifact! version: String! cursor: String! }
type ArtifactCollectionMembership {
  id: ID!
  versionIndex: Int
  createdAt: DateTime!
  aliases: [ArtifactAlias!]!
  artifactCollection: ArtifactCollection
  artifact: Artifact
}
type Artifact {
  id: ID!
  artifactSequence: ArtifactSequence!
  versionIndex: Int
  artifactType: ArtifactType!
  description: String
  metadata: JSONString
  ttlDurationSeconds: Int!
  ttlIsInherited: Boolean!
  tags: [Tag!]!
  historyStep: Int
  state: ArtifactState!
  size: Int!
  digest: String!
  digestAlgorithm: ArtifactDigestAlgorithm!
  commitHash: String
  fileCount: Int!
  createdAt: DateTime!
  updatedAt: DateTime
  aliases: [ArtifactAlias!]!
}

type TriggerConnection { pageInfo: PageInfo! edges: [TriggerEdge!]! }
type TriggerEdge { node: Trigger cursor: String! }
type Trigger {
  id: ID!
  createdAt: DateTime!
  updatedAt: DateTime
  name: String!
  description: String
  enabled: Boolean!
  scope: TriggerScope!
  triggeringCondition: TriggeringCondition!
  triggeredAction: TriggeredAction!
}
union TriggerScope = Project | ArtifactSequence | ArtifactPortfolio | Entity  # new
union TriggerScope = Project | ArtifactSequence | ArtifactPortfolio  # old
union TriggeringCondition = FilterEventTriggeringCondition
type FilterEventTriggeringCondition { eventType: EventTriggeringConditionType! filter: JSONString! }
union TriggeredAction =
  | QueueJobTriggeredAction
  | NotificationTriggeredAction
  | GenericWebhookTriggeredAction
  | NoOpTriggeredAction
type GenericWebhookTriggeredAction { integration: Integration! requestPayload: JSONString }
type NotificationTriggeredAction {
  integration: Integration!
  title: String
  message: String
  severity: AlertSeverity
}
type QueueJobTriggeredAction { queue: RunQueue template: JSONString! }
type RunQueue { id: ID! name: String! }
type NoOpTriggeredAction { noOp: Boolean }

interface Integration { id: ID! }
type GenericWebhookIntegration implements Integration {
  id: ID!
  name: String!
  urlEndpoint: String!
  createdAt: DateTime!
}
type SlackIntegration implements Integration { id: ID! teamName: String! channelName: String! }
type IntegrationConnection { pageInfo: PageInfo! edges: [IntegrationEdge!]! }
type IntegrationEdge { node: Integration cursor: String! }

input GenericWebhookActionInput { integrationID: ID! requestPayload: JSONString }
input NotificationActionInput {
  integrationID: ID!
  title: String
  message: String
  severity: AlertSeverity
}
input QueueJobActionInput { queueID: ID! template: JSONString! }
input NoOpTriggeredActionInput { noOp: Boolean }
input TriggeredActionConfig {
  genericWebhookActionInput: GenericWebhookActionInput
  notificationActionInput: NotificationActionInput
  queueJobActionInput: QueueJobActionInput
  noOpActionInput: NoOpTriggeredActionInput
}
input CreateFilterTriggerInput {
  name: String!
  description: String
  enabled: Boolean!
  scopeType: TriggerScopeType!
  scopeID: ID!
  triggeringEventType: EventTriggeringConditionType!
  eventFilter: JSONString!
  triggeredActionType: TriggeredActionType!
  triggeredActionConfig: TriggeredActionConfig!
  clientMutationId: String
}
input UpdateFilterTriggerInput {
  id: ID!
  name: String
  description: String
  enabled: Boolean
  scopeType: TriggerScopeType
  scopeID: ID
  triggeringEventType: EventTriggeringConditionType
  eventFilter: JSONString
  triggeredActionType: TriggeredActionType
  triggeredActionConfig: TriggeredActionConfig
  clientMutationId: String
}
input DeleteTriggerInput { triggerID: ID! clientMutationId: String }
input CreateGenericWebhookIntegrationInput {
  entityName: String!
  name: String!
  urlEndpoint: String!
  secretRef: String
  accessTokenRef: String
  clientMutationId: String
}
input InsertSecretInput {  # secrets
  entityName: String!  # secrets
  secretName: String!  # secrets
  secretValue: String!  # secrets
  clientMutationId: String  # secrets
}  # secrets

input ArtifactCollectionAliasInput {
  alias: String!
  entityName: String!
  projectName: String!
  artifactCollectionName: String!
}
input ArtifactAliasInput { alias: String! artifactCollectionName: String! }
input TagInput { tagName: String! tagCategoryName: String attributes: JSONString }
input AddAliasesInput {
  artifactID: ID!
  aliases: [ArtifactCollectionAliasInput!]!
  clientMutationId: String
}
input DeleteAliasesInput {
  artifactID: ID!
  aliases: [ArtifactCollectionAliasInput!]!
  clientMutationId: String
}
input UpdateArtifactInput {
  artifactID: ID!
  description: String
  labels: JSONString
  metadata: JSONString
  aliases: [ArtifactAliasInput!]
  tagsToAdd: [TagInput!]
  tagsToDelete: [TagInput!]
  ttlDurationSeconds: Int
  clientMutationId: String
}

type TriggerPayload { trigger: Trigger clientMutationId: String }
type DeleteTriggerPayload { success: Boolean! clientMutationId: String }
type CreateGenericWebhookIntegrationPayload {
  integration: GenericWebhookIntegration!
  clientMutationId: String
}
type InsertSecretPayload { success: Boolean! clientMutationId: String }  # secrets
type AddAliasesPayload { success: Boolean! clientMutationId: String }
type DeleteAliasesPayload { success: Boolean! clientMutationId: String }
type UpdateArtifactPayload { artifact: Artifact! clientMutationId: String }

type Mutation {
  createFilterTrigger(input: CreateFilterTriggerInput!): TriggerPayload
  updateFilterTrigger(input: UpdateFilterTriggerInput!): TriggerPayload
  deleteTrigger(input: DeleteTriggerInput!): DeleteTriggerPayload
  createGenericWebhookIntegration(
    input: CreateGenericWebhookIntegrationInput!
  ): CreateGenericWebhookIntegrationPayload
  insertSecret(input: InsertSecretInput!): InsertSecretPayload  # secrets
  addAliases(input: AddAliasesInput!): AddAliasesPayload
  deleteAliases(input: DeleteAliasesInput!): DeleteAliasesPayload
  updateArtifact(input: UpdateArtifactInput!): UpdateArtifactPayload
}
"""


def make_schema(*, legacy: bool = False, secrets: bool = True) -> GraphQLSchema:
    """The schema of a current W&B (default), an old W&B Server, or one without secrets."""
    drop = ["# new" if legacy else "# old"] + ([] if secrets else ["# secrets"])
    lines = [line for line in SDL.splitlines() if not any(line.endswith(d) for d in drop)]
    schema = build_schema("\n".join(re.sub(r"  # \w+$", "", line) for line in lines))
    scalar: Any = schema.type_map["JSONString"]
    scalar.parse_value = _json_text
    scalar.parse_literal = _json_literal
    return schema


def _json_text(value: Any) -> str:
    if not isinstance(value, str):
        raise GraphQLError(f"JSONString cannot represent a non-string value: {value!r}")
    try:
        json.loads(value)
    except ValueError as exc:
        raise GraphQLError(f"JSONString is not valid JSON: {exc}") from exc
    return value


def _json_literal(node: ValueNode, _variables: Any = None) -> str:
    if not isinstance(node, StringValueNode):
        raise GraphQLError("JSONString must be a string literal")
    return _json_text(node.value)
