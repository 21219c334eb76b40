//! `frontline.v1.ConversationService`: requests in, answers out. Every call goes
//! through [`handle`] (authenticate, authorise, validate); the domain decides.

use frontline_domain::{
    Action, Caller, Ticket, TicketCommand,
    article::ArticleCommand,
    macros::{MacroCommand, StatusChange},
    satisfaction,
};
use frontline_eventlog::{CommandOptions, EventLog, EventMeta, execute};
use frontline_proto::{
    convert,
    v1::{self, conversation_service_server::ConversationService},
};
use frontline_runtime::{ApiError, Call, handle, now_millis};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    articles, macros, merge,
    tickets::{self, AsOf},
    watch,
};

/// The conversation gRPC service.
#[derive(Debug, Clone)]
pub struct Conversation {
    log: EventLog,
    options: CommandOptions,
}

fn ticket_id(raw: &str) -> Result<Uuid, ApiError> {
    uuid("ticket_id", raw)
}

fn uuid(field: &str, raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::invalid(field, "must be a UUID"))
}

fn optional_key(key: String) -> Option<String> {
    (!key.is_empty()).then_some(key)
}

impl Conversation {
    /// A conversation service on `log`.
    pub fn new(log: EventLog, options: CommandOptions) -> Self {
        Conversation { log, options }
    }

    /// Runs one ticket command for the caller and answers with what changed.
    async fn command(
        &self,
        caller: &Caller,
        meta: &EventMeta,
        raw_id: &str,
        expected_version: Option<u64>,
        command: TicketCommand,
    ) -> Result<v1::TicketChange, ApiError> {
        let id = ticket_id(raw_id)?;
        // The fields before anything is read: a bad body is INVALID_ARGUMENT even
        // while the log is unreachable (decide checks them again, as it must).
        command.validate()?;
        let options = CommandOptions {
            expected_version,
            ..self.options
        };
        let outcome = execute(
            &self.log,
            &id,
            meta,
            options,
            now_millis,
            |t: &Ticket, now| {
                // Another tenant's ticket is one that does not exist.
                caller.check_sees("ticket", &id, &t.tenant)?;
                t.decide(raw_id, &command, &meta.actor, now)
            },
        )
        .await?;
        let ticket = &outcome.loaded.state;
        tracing::info!(
            ticket_id = %id,
            version = ticket.version,
            recorded = outcome.appended,
            "ticket command"
        );
        Ok(v1::TicketChange {
            ticket_id: id.to_string(),
            version: ticket.version,
            status: ticket
                .status
                .map_or(0, |s| v1::TicketStatus::from(s).into()),
            recorded: outcome.appended,
        })
    }
}

impl Conversation {
    /// One ticket command call: `parse` turns the request into the ticket, the
    /// expected version and the command; `answer` wraps what changed.
    async fn ticket_command<M, R>(
        &self,
        request: Request<M>,
        action: Action,
        parse: impl FnOnce(M) -> (String, Option<u64>, TicketCommand),
        answer: impl FnOnce(v1::TicketChange) -> R,
    ) -> Result<Response<R>, Status> {
        handle(request, action, |call| async move {
            let (id, expected_version, command) = parse(call.message);
            let change = self
                .command(&call.caller, &call.meta, &id, expected_version, command)
                .await?;
            Ok(answer(change))
        })
        .await
    }
}

#[tonic::async_trait]
impl ConversationService for Conversation {
    async fn reply(
        &self,
        request: Request<v1::ReplyRequest>,
    ) -> Result<Response<v1::ReplyResponse>, Status> {
        self.ticket_command(
            request,
            Action::Reply,
            |r| {
                let command = TicketCommand::Reply {
                    body: r.body,
                    awaiting_customer: r.awaiting_customer,
                    idempotency_key: optional_key(r.idempotency_key),
                };
                (r.ticket_id, r.expected_version, command)
            },
            |change| v1::ReplyResponse {
                change: Some(change),
            },
        )
        .await
    }

    async fn add_note(
        &self,
        request: Request<v1::AddNoteRequest>,
    ) -> Result<Response<v1::AddNoteResponse>, Status> {
        self.ticket_command(
            request,
            Action::AddNote,
            |r| {
                let command = TicketCommand::AddNote {
                    body: r.body,
                    idempotency_key: optional_key(r.idempotency_key),
                };
                (r.ticket_id, r.expected_version, command)
            },
            |change| v1::AddNoteResponse {
                change: Some(change),
            },
        )
        .await
    }

    async fn solve(
        &self,
        request: Request<v1::SolveRequest>,
    ) -> Result<Response<v1::SolveResponse>, Status> {
        self.ticket_command(
            request,
            Action::Solve,
            |r| {
                let command = TicketCommand::Solve {
                    resolution: r.resolution,
                };
                (r.ticket_id, r.expected_version, command)
            },
            |change| v1::SolveResponse {
                change: Some(change),
            },
        )
        .await
    }

    async fn reopen(
        &self,
        request: Request<v1::ReopenRequest>,
    ) -> Result<Response<v1::ReopenResponse>, Status> {
        self.ticket_command(
            request,
            Action::Reopen,
            |r| {
                let command = TicketCommand::Reopen { reason: r.reason };
                (r.ticket_id, r.expected_version, command)
            },
            |change| v1::ReopenResponse {
                change: Some(change),
            },
        )
        .await
    }

    async fn propose_decline(
        &self,
        request: Request<v1::ProposeDeclineRequest>,
    ) -> Result<Response<v1::ProposeDeclineResponse>, Status> {
        self.ticket_command(
            request,
            Action::ProposeDecline,
            |r| {
                let command = TicketCommand::ProposeDecline {
                    reason: r.reason,
                    rationale: r.rationale,
                };
                (r.ticket_id, r.expected_version, command)
            },
            |change| v1::ProposeDeclineResponse {
                change: Some(change),
            },
        )
        .await
    }

    async fn approve_decline(
        &self,
        request: Request<v1::ApproveDeclineRequest>,
    ) -> Result<Response<v1::ApproveDeclineResponse>, Status> {
        self.ticket_command(
            request,
            Action::DecideDecline,
            |r| {
                let command = TicketCommand::ApproveDecline { note: r.note };
                (r.ticket_id, r.expected_version, command)
            },
            |change| v1::ApproveDeclineResponse {
                change: Some(change),
            },
        )
        .await
    }

    async fn reject_decline(
        &self,
        request: Request<v1::RejectDeclineRequest>,
    ) -> Result<Response<v1::RejectDeclineResponse>, Status> {
        self.ticket_command(
            request,
            Action::DecideDecline,
            |r| {
                let command = TicketCommand::RejectDecline { note: r.note };
                (r.ticket_id, r.expected_version, command)
            },
            |change| v1::RejectDeclineResponse {
                change: Some(change),
            },
        )
        .await
    }

    async fn close(
        &self,
        request: Request<v1::CloseRequest>,
    ) -> Result<Response<v1::CloseResponse>, Status> {
        self.ticket_command(
            request,
            Action::Close,
            |r| {
                let command = TicketCommand::Close { after: None };
                (r.ticket_id, r.expected_version, command)
            },
            |change| v1::CloseResponse {
                change: Some(change),
            },
        )
        .await
    }

    async fn rate_satisfaction(
        &self,
        request: Request<v1::RateSatisfactionRequest>,
    ) -> Result<Response<v1::RateSatisfactionResponse>, Status> {
        self.ticket_command(
            request,
            Action::RecordFeedback,
            |r| {
                let command = TicketCommand::RateSatisfaction {
                    score: satisfaction::score(r.score),
                    comment: r.comment,
                };
                (r.ticket_id, r.expected_version, command)
            },
            |change| v1::RateSatisfactionResponse {
                change: Some(change),
            },
        )
        .await
    }

    async fn merge_ticket(
        &self,
        request: Request<v1::MergeTicketRequest>,
    ) -> Result<Response<v1::MergeTicketResponse>, Status> {
        handle(request, Action::MergeTickets, |call| async move {
            let source = uuid("source_ticket_id", &call.message.source_ticket_id)?;
            let target = uuid("target_ticket_id", &call.message.target_ticket_id)?;
            let (source, target) = merge::run(
                &self.log,
                self.options,
                (&call.caller, &call.meta),
                source,
                merge::Change::Into(target),
                &call.message.reason,
            )
            .await?;
            Ok(v1::MergeTicketResponse {
                source: Some(source),
                target: Some(target),
            })
        })
        .await
    }

    async fn unmerge_ticket(
        &self,
        request: Request<v1::UnmergeTicketRequest>,
    ) -> Result<Response<v1::UnmergeTicketResponse>, Status> {
        handle(request, Action::MergeTickets, |call| async move {
            let source = uuid("source_ticket_id", &call.message.source_ticket_id)?;
            let (source, target) = merge::run(
                &self.log,
                self.options,
                (&call.caller, &call.meta),
                source,
                merge::Change::Undo,
                &call.message.reason,
            )
            .await?;
            Ok(v1::UnmergeTicketResponse {
                source: Some(source),
                target: Some(target),
            })
        })
        .await
    }

    async fn put_macro(
        &self,
        request: Request<v1::PutMacroRequest>,
    ) -> Result<Response<v1::PutMacroResponse>, Status> {
        handle(request, Action::ManageMacros, |call| async move {
            let wire = call.message.r#macro.clone().unwrap_or_default();
            let found = convert::macro_from_wire(&wire)?;
            found.validate()?;
            let tenant = call.acting_tenant()?;
            let recorded = macros::change(
                &self.log,
                self.options,
                (&call.caller, &call.meta),
                &tenant,
                MacroCommand::Put(found.clone()),
            )
            .await?;
            Ok(v1::PutMacroResponse {
                r#macro: Some(convert::macro_wire(&found)),
                recorded,
            })
        })
        .await
    }

    async fn remove_macro(
        &self,
        request: Request<v1::RemoveMacroRequest>,
    ) -> Result<Response<v1::RemoveMacroResponse>, Status> {
        handle(request, Action::ManageMacros, |call| async move {
            let tenant = call.acting_tenant()?;
            macros::change(
                &self.log,
                self.options,
                (&call.caller, &call.meta),
                &tenant,
                MacroCommand::Remove(call.message.name.clone()),
            )
            .await?;
            Ok(v1::RemoveMacroResponse {})
        })
        .await
    }

    async fn list_macros(
        &self,
        request: Request<v1::ListMacrosRequest>,
    ) -> Result<Response<v1::ListMacrosResponse>, Status> {
        handle(request, Action::ReadMacros, |call| async move {
            let tenant = call.acting_tenant()?;
            let book = macros::book(&self.log, &tenant).await?;
            Ok(v1::ListMacrosResponse {
                macros: book.macros.values().map(convert::macro_wire).collect(),
                answer_rules: book
                    .answer_rules
                    .iter()
                    .map(|(area, name)| v1::AnswerRule {
                        product_area: area.clone(),
                        macro_name: name.clone(),
                    })
                    .collect(),
            })
        })
        .await
    }

    async fn put_answer_rule(
        &self,
        request: Request<v1::PutAnswerRuleRequest>,
    ) -> Result<Response<v1::PutAnswerRuleResponse>, Status> {
        handle(request, Action::ManageMacros, |call| async move {
            let rule = call.message.rule.clone().unwrap_or_default();
            let command = MacroCommand::SetAnswerRule {
                product_area: rule.product_area,
                macro_name: (!rule.macro_name.is_empty()).then_some(rule.macro_name),
            };
            let tenant = call.acting_tenant()?;
            let recorded = macros::change(
                &self.log,
                self.options,
                (&call.caller, &call.meta),
                &tenant,
                command,
            )
            .await?;
            Ok(v1::PutAnswerRuleResponse { recorded })
        })
        .await
    }

    async fn publish_article(
        &self,
        request: Request<v1::PublishArticleRequest>,
    ) -> Result<Response<v1::PublishArticleResponse>, Status> {
        handle(request, Action::ManageArticles, |call| async move {
            let wire = call.message.article.clone().unwrap_or_default();
            let draft = convert::article_draft(&wire);
            // The fields before anything is read.
            draft.validate()?;
            let tenant = call.acting_tenant()?;
            let command = ArticleCommand::Publish {
                tenant: tenant.clone(),
                draft,
                expected_revision: call.message.expected_revision,
            };
            let (article, recorded) = articles::change(
                &self.log,
                self.options,
                (&call.caller, &call.meta),
                &tenant,
                command,
            )
            .await?;
            Ok(v1::PublishArticleResponse {
                article: Some(article),
                recorded,
            })
        })
        .await
    }

    async fn retire_article(
        &self,
        request: Request<v1::RetireArticleRequest>,
    ) -> Result<Response<v1::RetireArticleResponse>, Status> {
        handle(request, Action::ManageArticles, |call| async move {
            let tenant = call.acting_tenant()?;
            let command = ArticleCommand::Retire {
                slug: call.message.slug.clone(),
                expected_revision: call.message.expected_revision,
            };
            let (article, recorded) = articles::change(
                &self.log,
                self.options,
                (&call.caller, &call.meta),
                &tenant,
                command,
            )
            .await?;
            Ok(v1::RetireArticleResponse {
                article: Some(article),
                recorded,
            })
        })
        .await
    }

    async fn get_article(
        &self,
        request: Request<v1::GetArticleRequest>,
    ) -> Result<Response<v1::GetArticleResponse>, Status> {
        handle(request, Action::ReadArticles, |call| async move {
            let tenant = call.acting_tenant()?;
            let (id, article) = articles::get(&self.log, &tenant, &call.message.slug).await?;
            Ok(v1::GetArticleResponse {
                article: Some(convert::article_wire(id, &article)),
            })
        })
        .await
    }

    async fn request_human(
        &self,
        request: Request<v1::RequestHumanRequest>,
    ) -> Result<Response<v1::RequestHumanResponse>, Status> {
        self.ticket_command(
            request,
            Action::SubmitContact,
            |r| (r.ticket_id, None, TicketCommand::RequestHuman),
            |change| v1::RequestHumanResponse {
                change: Some(change),
            },
        )
        .await
    }

    async fn apply_macro(
        &self,
        request: Request<v1::ApplyMacroRequest>,
    ) -> Result<Response<v1::ApplyMacroResponse>, Status> {
        handle(
            request,
            Action::Reply,
            |Call {
                 caller,
                 meta,
                 message: r,
                 ..
             }| async move {
                let id = ticket_id(&r.ticket_id)?;
                let key = optional_key(r.idempotency_key);
                if let Some(key) = &key {
                    frontline_domain::limits::idempotency_key("idempotency_key", key)?;
                }
                let (body, change) = macros::fill(&self.log, &caller, id, &r.name).await?;
                let reply = macros::reply(body.clone(), change, key);
                let mut outcome = self
                    .command(&caller, &meta, &r.ticket_id, None, reply)
                    .await?;
                // Solved unless it is already (a retry whose reply was a repeat
                // still solves a ticket the first attempt left open).
                let solved = outcome.status == i32::from(v1::TicketStatus::Solved);
                if change == StatusChange::Solved && !solved {
                    let solve = TicketCommand::Solve {
                        resolution: String::new(),
                    };
                    outcome = self
                        .command(&caller, &meta, &r.ticket_id, None, solve)
                        .await?;
                }
                Ok(v1::ApplyMacroResponse {
                    body,
                    change: Some(outcome),
                })
            },
        )
        .await
    }

    async fn get_ticket(
        &self,
        request: Request<v1::GetTicketRequest>,
    ) -> Result<Response<v1::GetTicketResponse>, Status> {
        handle(request, Action::ReadTicket, |call| async move {
            let id = ticket_id(&call.message.ticket_id)?;
            let as_of = AsOf::parse(call.message.as_of_version, call.message.as_of_time.as_ref())?;
            let view = tickets::view(&self.log, &call.caller, &id, as_of).await?;
            let ticket =
                tickets::wire(&self.log, &id, &view, call.caller.actor.role.is_staff()).await?;
            Ok(v1::GetTicketResponse {
                ticket: Some(ticket),
            })
        })
        .await
    }

    type WatchTicketStream = watch::Updates;

    async fn watch_ticket(
        &self,
        request: Request<v1::WatchTicketRequest>,
    ) -> Result<Response<Self::WatchTicketStream>, Status> {
        handle(request, Action::ReadTicket, |call| async move {
            let id = ticket_id(&call.message.ticket_id)?;
            watch::start(&self.log, &call.caller, id, call.message.from_version).await
        })
        .await
    }

    async fn get_ticket_history(
        &self,
        request: Request<v1::GetTicketHistoryRequest>,
    ) -> Result<Response<v1::GetTicketHistoryResponse>, Status> {
        handle(request, Action::ReadHistory, |call| async move {
            let id = ticket_id(&call.message.ticket_id)?;
            let events = tickets::history(&self.log, &call.caller, &id).await?;
            Ok(v1::GetTicketHistoryResponse { events })
        })
        .await
    }
}
