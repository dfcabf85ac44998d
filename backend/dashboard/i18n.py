"""The dashboard's one translation table: every visible string, Russian (default) and English.

    t("overview.title")                      # "Обзор" or "Overview", by the sidebar switch
    t("runs.page_info", page=2, count=50)    # placeholders are str.format fields
    pick_language(experiment.description)    # the Russian or the English paragraphs of a bilingual text

A page never writes a literal string of its own; data (run names, metric names, MLflow's messages)
is shown as it is. ``tests/test_dashboard_i18n.py`` checks that both languages have every key and
the same placeholders. The engine's verdicts (promotion gate, rollback, archive) are not in this
table: they arrive as codes with parameters and are rendered in the page's language by
:mod:`backend.ml_engine.verdicts` (``event.detail_text(lang)``, ``decision.reason_text(lang)``).
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Any

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "LANG_KEY",
    "TEXTS",
    "current_language",
    "ensure_language",
    "has_text",
    "in_language",
    "pick_language",
    "placeholders",
    "t",
]

LANGUAGES: tuple[str, ...] = ("ru", "en")
DEFAULT_LANGUAGE = "ru"
#: Session-state key of the language switch (a widget in the sidebar).
LANG_KEY = "lang"

_FILTER_RU = (
    "Синтаксис MLflow: `metrics.<имя> > 0.7`, `params.<имя> = '<значение>'`, `tags.<имя> = '<значение>'`, "
    "`attributes.status = 'FINISHED'`. Условия соединяются через AND; значения параметров и тегов — "
    "в одинарных кавычках."
)
_FILTER_EN = (
    "MLflow syntax: `metrics.<name> > 0.7`, `params.<name> = '<value>'`, `tags.<name> = '<value>'`, "
    "`attributes.status = 'FINISHED'`. Join conditions with AND; quote param and tag values with single quotes."
)

#: key -> (Russian, English)
_TABLE: dict[str, tuple[str, str]] = {
    # -- application -------------------------------------------------------------------------
    "app.title": ("Trading Bot ML — панель", "Trading Bot ML — dashboard"),
    "app.caption": (
        "Данные MLflow через сервисный слой проекта — тот же, что у REST API.",
        "MLflow data through the project's service layer, the same one the REST API uses.",
    ),
    "app.settings_error": (
        "Настройки панели не годятся (переменные ML_* и MLFLOW_*, файл .env):",
        "The dashboard's settings are not usable (ML_* and MLFLOW_* variables, the .env file):",
    ),
    "error.unexpected": (
        "Страница не смогла получить данные. Сообщение об ошибке:",
        "The page could not get its data. The error says:",
    ),
    "lang.label": ("Язык", "Language"),
    "lang.ru": ("RU", "RU"),
    "lang.en": ("EN", "EN"),
    "nav.overview": ("Обзор", "Overview"),
    "nav.runs": ("Эксперименты и запуски", "Experiments and runs"),
    "nav.compare": ("Сравнение", "Comparison"),
    "nav.models": ("Модели", "Models"),
    "nav.training": ("Обучение", "Training"),
    "nav.retraining": ("Переобучение и дрейф", "Retraining and drift"),
    "nav.glossary": ("Справка", "Help"),
    # -- common ------------------------------------------------------------------------------
    "common.yes": ("да", "yes"),
    "common.no": ("нет", "no"),
    "common.choose": ("Выберите…", "Choose…"),
    "unit.s": ("{s} с", "{s} s"),
    "unit.ms": ("{m} мин {s} с", "{m} min {s} s"),
    "unit.hm": ("{h} ч {m} мин", "{h} h {m} min"),
    "chart.step": ("Шаг (эпоха)", "Step (epoch)"),
    "chart.value": ("Значение", "Value"),
    "chart.time": ("Время запуска", "Start time"),
    # -- table columns -----------------------------------------------------------------------
    "col.run_name": ("Запуск", "Run"),
    "col.run_id": ("ID запуска", "Run ID"),
    "col.run": ("Запуск", "Run"),
    "col.experiment": ("Эксперимент", "Experiment"),
    "col.status": ("Статус", "Status"),
    "col.started": ("Начало", "Started"),
    "col.duration": ("Длительность", "Duration"),
    "col.created": ("Создана", "Created"),
    "col.time": ("Время", "Time"),
    "col.job": ("Задача", "Job"),
    "col.kind": ("Вид", "Kind"),
    "col.model": ("Модель", "Model"),
    "col.progress": ("Эпох пройдено", "Epochs done"),
    "col.version": ("Версия", "Version"),
    "col.aliases": ("Алиасы", "Aliases"),
    "col.description": ("Описание", "Description"),
    "col.decision": ("Решение", "Decision"),
    "col.from_to": ("Было → стало", "From → to"),
    "col.actor": ("Кто", "Who"),
    "col.forced": ("Без проверки", "Forced"),
    "col.reason": ("Причина", "Reason"),
    "col.detail": ("Заключение проверки", "Gate verdict"),
    "col.metric": ("Метрика", "Metric"),
    "col.param": ("Параметр", "Parameter"),
    "col.tag": ("Тег", "Tag"),
    "col.value": ("Значение", "Value"),
    "col.points": ("Точек", "Points"),
    "col.path": ("Путь", "Path"),
    "col.size": ("Размер, байт", "Size, bytes"),
    "col.name": ("Имя", "Name"),
    "col.type": ("Тип", "Type"),
    "col.dtype": ("Тип данных", "Data type"),
    "col.shape": ("Форма", "Shape"),
    "col.optional": ("Необязательный", "Optional"),
    "col.digest": ("Хеш", "Digest"),
    "col.context": ("Контекст", "Context"),
    "col.trigger": ("Причина запуска", "Trigger"),
    "col.candidate": ("Кандидат", "Candidate"),
    "col.production_before": ("Production до", "Production before"),
    "col.drift": ("Дрейф", "Drift"),
    "col.feature": ("Признак", "Feature"),
    # -- statuses and decisions ----------------------------------------------------------------
    "run.status.RUNNING": ("выполняется", "running"),
    "run.status.SCHEDULED": ("запланирован", "scheduled"),
    "run.status.FINISHED": ("завершён", "finished"),
    "run.status.FAILED": ("ошибка", "failed"),
    "run.status.KILLED": ("остановлен", "killed"),
    "version.status.READY": ("готова", "ready"),
    "version.status.PENDING_REGISTRATION": ("регистрируется", "registering"),
    "version.status.FAILED_REGISTRATION": ("не зарегистрирована", "registration failed"),
    "job.status.queued": ("в очереди", "queued"),
    "job.status.running": ("выполняется", "running"),
    "job.status.finished": ("завершена", "finished"),
    "job.status.failed": ("ошибка", "failed"),
    "job.status.cancelled": ("отменена", "cancelled"),
    "job.kind.train": ("обучение", "training"),
    "job.kind.retrain": ("переобучение", "retraining"),
    "job.origin.api": ("API / панель", "API / dashboard"),
    "job.origin.schedule": ("по расписанию", "schedule"),
    "col.origin": ("Источник", "Origin"),
    "col.worker": ("Исполнитель", "Worker"),
    "decision.promoted": ("продвинута", "promoted"),
    "decision.refused": ("отклонена", "refused"),
    "decision.rolled_back": ("откат", "rolled back"),
    "decision.archived": ("в архиве", "archived"),
    "trigger.manual": ("вручную", "by hand"),
    "trigger.scheduled": ("по расписанию", "on schedule"),
    "trigger.drift": ("дрейф данных", "data drift"),
    "trigger.performance_drop": ("падение качества", "performance drop"),
    # -- errors and access ---------------------------------------------------------------------
    "error.not_found": ("Не найдено. Сообщение сервиса:", "Not found. The service says:"),
    "error.invalid_request": ("Запрос отклонён. Сообщение сервиса:", "Request refused. The service says:"),
    "error.invalid_data": ("Данные непригодны. Сообщение сервиса:", "Unusable data. The service says:"),
    "error.conflict": ("Действие сейчас невозможно. Сообщение сервиса:", "Not possible now. The service says:"),
    "error.unavailable": ("Хранилище недоступно. Сообщение сервиса:", "Store unavailable. The service says:"),
    "error.other": ("Ошибка. Сообщение сервиса:", "Error. The service says:"),
    "access.read_only": (
        "Только просмотр: токен API (ML_API_TOKEN) не задан, поэтому продвижение, откат и запуск обучения "
        "недоступны — как и в REST API.",
        "Read-only: no API token (ML_API_TOKEN) is configured, so promotion, rollback and training are "
        "disabled — as in the REST API.",
    ),
    "access.token": ("Токен API", "API token"),
    "access.token_help": (
        "Значение ML_API_TOKEN — тот же токен, что требует REST API для изменений.",
        "The value of ML_API_TOKEN — the token the REST API requires for changes.",
    ),
    "access.bad_token": (
        "Неверный или пустой токен API: действие не выполнено.",
        "Missing or wrong API token: nothing was done.",
    ),
    # -- validation (pydantic error types of the API's request schemas) --------------------------
    "validation.line": ("{field}: {message}", "{field}: {message}"),
    "validation.other": ("недопустимое значение ({message})", "invalid value ({message})"),
    "validation.greater_than": ("должно быть больше {gt}", "must be greater than {gt}"),
    "validation.greater_than_equal": ("должно быть не меньше {ge}", "must be at least {ge}"),
    "validation.less_than": ("должно быть меньше {lt}", "must be less than {lt}"),
    "validation.less_than_equal": ("должно быть не больше {le}", "must be at most {le}"),
    "validation.string_pattern_mismatch": (
        "не соответствует шаблону {pattern}",
        "does not match the pattern {pattern}",
    ),
    "validation.too_long": (
        "слишком много элементов (не больше {max_length})",
        "too many items (at most {max_length})",
    ),
    "validation.string_too_long": (
        "слишком длинная строка (не больше {max_length})",
        "too long (at most {max_length} characters)",
    ),
    "validation.int_type": ("нужно целое число", "must be a whole number"),
    "validation.int_parsing": ("нужно целое число", "must be a whole number"),
    "validation.float_type": ("нужно число", "must be a number"),
    "validation.bool_type": ("нужно да или нет", "must be yes or no"),
    "validation.extra_forbidden": ("неизвестное поле", "unknown field"),
    "validation.missing": ("обязательное поле", "required"),
    "validation.literal_error": ("допустимо одно из: {expected}", "must be one of: {expected}"),
    "validation.finite_number": ("нужно конечное число", "must be a finite number"),
    # -- glossary: terms, descriptions, where in the dashboard -------------------------------
    "glossary.experiment.term": ("Эксперимент", "Experiment"),
    "glossary.experiment.desc": (
        "Группа связанных запусков (как папка для экспериментов). В проекте: `trading_bot_ml`, "
        "`model_training`, `auto_retraining`.",
        "A group of related runs (like a folder). This project has `trading_bot_ml`, `model_training`, "
        "`auto_retraining`.",
    ),
    "glossary.experiment.where": (
        "«Эксперименты и запуски»: выбор и назначение каждого",
        "“Experiments and runs”: the picker, with each one's purpose",
    ),
    "glossary.run.term": ("Запуск", "Run"),
    "glossary.run.desc": (
        "Одно выполнение обучения со своими параметрами и метриками.",
        "One execution of a training, with its own parameters and metrics.",
    ),
    "glossary.run.where": (
        "Таблица запусков, карточка запуска, «Сравнение»",
        "The runs table, the run page, “Comparison”",
    ),
    "glossary.artifact.term": ("Артефакт", "Artifact"),
    "glossary.artifact.desc": (
        "Файл, связанный с запуском: модель, ONNX, график, metadata.json.",
        "A file attached to a run: the model, ONNX, a plot, metadata.json.",
    ),
    "glossary.artifact.where": ("Карточка запуска → «Артефакты»", "Run page → “Artifacts”"),
    "glossary.metric.term": ("Метрика", "Metric"),
    "glossary.metric.desc": (
        "Числовое значение (accuracy, loss); записанная по эпохам, даёт кривую обучения.",
        "A number (accuracy, loss); logged per epoch, it draws a learning curve.",
    ),
    "glossary.metric.where": (
        "Карточка запуска → «Кривые обучения», «Метрики»",
        "Run page → “Learning curves”, “Metrics”",
    ),
    "glossary.parameter.term": ("Параметр", "Parameter"),
    "glossary.parameter.desc": (
        "Настройка обучения (epochs, lr, batch_size); хранится строкой, поэтому в фильтре значение берут в кавычки.",
        "A training setting (epochs, lr, batch_size); stored as a string, so filters quote its value.",
    ),
    "glossary.parameter.where": (
        "Карточка запуска → «Параметры», «Сравнение»",
        "Run page → “Parameters”, “Comparison”",
    ),
    "glossary.tag.term": ("Тег", "Tag"),
    "glossary.tag.desc": (
        "Метка для поиска и фильтрации (trigger, training_mode, model_name).",
        "A label for search and filtering (trigger, training_mode, model_name).",
    ),
    "glossary.tag.where": ("Карточка запуска → «Теги»; версии в «Моделях»", "Run page → “Tags”; versions in “Models”"),
    "glossary.registry.term": ("Реестр моделей", "Model registry"),
    "glossary.registry.desc": (
        "Хранилище версий моделей и история их продвижения в production.",
        "Where model versions live, with the history of their promotions to production.",
    ),
    "glossary.registry.where": ("«Модели»", "“Models”"),
    "glossary.version.term": ("Версия модели", "Model version"),
    "glossary.version.desc": (
        "Конкретная версия модели в реестре, созданная из запуска: теги с ключевыми "
        "метриками, описание, схема входа и выхода.",
        "One version of a model in the registry, made from a run: tags with the key "
        "metrics, a description, the input and output schema.",
    ),
    "glossary.version.where": ("«Модели» → таблица версий", "“Models” → the versions table"),
    "glossary.alias.term": ("Алиас", "Alias"),
    "glossary.alias.desc": (
        "Именованная ссылка на версию (`production` → v3). Заменяет устаревшие стадии: "
        "продвижение и откат переставляют алиас `production`.",
        "A named pointer to a version (`production` → v3). Replaces the deprecated stages: "
        "promotion and rollback move the `production` alias.",
    ),
    "glossary.alias.where": ("«Обзор», «Модели»", "“Overview”, “Models”"),
    "glossary.stage.term": ("Стадия модели", "Model stage"),
    "glossary.stage.desc": (
        "Staging / Production / Archived — устарели с MLflow 2.9; вместо них — алиас `production`.",
        "Staging / Production / Archived — deprecated since MLflow 2.9; the `production` alias replaces them.",
    ),
    "glossary.stage.where": ("Не используется", "Not used"),
    "glossary.drift.term": ("Дрейф данных", "Data drift"),
    "glossary.drift.desc": (
        "Свежие свечи распределены иначе, чем данные обучения production-версии "
        "(PSI и тест Колмогорова–Смирнова по каждому признаку).",
        "Recent candles are distributed unlike the production version's training data "
        "(PSI and the Kolmogorov–Smirnov test per feature).",
    ),
    "glossary.drift.where": ("«Переобучение и дрейф»", "“Retraining and drift”"),
    # -- metrics: what each measures, on which data, what a good value is (metric_help.py) -------
    "metric.help": (
        "**{name}** — {what}\n\n**Данные:** {split}\n\n**Хорошее значение:** {good}",
        "**{name}** — {what}\n\n**Data:** {split}\n\n**A good value:** {good}",
    ),
    "metric.alias": (
        "Имя из руководства: то же значение, что `{target}`.",
        "The guide's name: the same value as `{target}`.",
    ),
    "metric.stat.mean": ("Среднее по фолдам.", "The mean over the folds."),
    "metric.stat.std": (
        "Разброс (стандартное отклонение) по фолдам.",
        "The spread (standard deviation) over the folds.",
    ),
    "metric.good.std": (
        "чем меньше, тем стабильнее модель от отрезка к отрезку; разброс, сравнимый со средним, значит, что "
        "среднему верить нельзя.",
        "the smaller, the steadier the model from one period to the next; a spread as large as the mean means "
        "the mean cannot be trusted.",
    ),
    "metric.stat.delta": (
        "Разница «новая модель минус версия в production» на одних и тех же фолдах, среднее.",
        "The difference “new model minus the production version” on the same folds, the mean.",
    ),
    "metric.good.delta": (
        "больше 0 — новая модель лучше версии в production на тех же данных; около 0 — не лучше.",
        "above 0 the new model beats the production version on the same data; about 0 it does not.",
    ),
    "metric.what.coverage": (
        "доля окон фолда, для которых у версии в production нашёлся прогноз; её метрики посчитаны только на них.",
        "the share of a fold's windows the production version has a prediction for; its metrics use only those.",
    ),
    "metric.good.coverage": (
        "близко к 1 — сравнение с production честное; заметно меньше — сравнение только на части окон.",
        "close to 1 the comparison with production is fair; well below, it covers only part of the windows.",
    ),
    "metric.class.up": ("рост", "up"),
    "metric.class.down": ("падение", "down"),
    "metric.class.flat": ("флэт", "flat"),
    "metric.what.accuracy": (
        "доля окон, где направление цены (падение, флэт, рост) предсказано верно.",
        "the share of windows whose price direction (down, flat, up) is predicted right.",
    ),
    "metric.good.accuracy": (
        "выше обоих базовых уровней на тех же окнах: «всегда самый частый класс» "
        "(`baseline_majority_accuracy`) и «повторить прошлое направление» (`baseline_previous_direction_accuracy`). "
        "Ниже них модель хуже простого правила. Случайный выбор из трёх классов даёт около 0,33.",
        "above both baselines on the same windows: “always the most frequent class” "
        "(`baseline_majority_accuracy`) and “repeat the last direction” (`baseline_previous_direction_accuracy`). "
        "Below them the model is worse than a plain rule. Guessing among three classes gives about 0.33.",
    ),
    "metric.what.f1_macro": (
        "макро-F1: среднее F1 трёх классов, каждый класс весит одинаково. Модель, которая всегда отвечает "
        "«флэт», получает низкий балл, даже если её точность высока.",
        "macro F1: the mean F1 of the three classes, each class weighing the same. A model that always answers "
        "“flat” scores low even when its accuracy is high.",
    ),
    "metric.good.f1_macro": (
        "выше макро-F1 базовых уровней (`baseline_*_f1_macro`); 1 — идеально, около 0,33 и ниже — не лучше угадывания.",
        "above the baselines' macro F1 (`baseline_*_f1_macro`); 1 is perfect, about 0.33 or less is no better "
        "than guessing.",
    ),
    "metric.what.f1_class": (
        "F1 класса «{cls}»: гармоническое среднее точности и полноты этого класса.",
        "the F1 of class “{cls}”: the harmonic mean of its precision and recall.",
    ),
    "metric.good.f1_class": (
        "выше, чем у базовых уровней для того же класса; 0 — класс ни разу не угадан.",
        "above the baselines' for the same class; 0 means the class is never hit.",
    ),
    "metric.what.precision_class": (
        "точность класса «{cls}»: какая доля ответов «{cls}» оказалась верной.",
        "the precision of class “{cls}”: the share of “{cls}” answers that were right.",
    ),
    "metric.good.precision_class": (
        "чем выше, тем меньше ложных сигналов; для сигналов на сделку это важнее полноты.",
        "the higher, the fewer false signals; for trade signals it matters more than recall.",
    ),
    "metric.what.recall_class": (
        "полнота класса «{cls}»: какую долю настоящих случаев «{cls}» модель нашла.",
        "the recall of class “{cls}”: the share of real “{cls}” cases the model found.",
    ),
    "metric.good.recall_class": (
        "чем выше, тем меньше пропущенных движений; 0 — модель этот класс не предсказывает.",
        "the higher, the fewer moves missed; 0 means the model never predicts the class.",
    ),
    "metric.what.support_class": (
        "число окон класса «{cls}» в выборке.",
        "the number of windows of class “{cls}” in the data.",
    ),
    "metric.good.support_class": (
        "не оценка качества: показывает баланс классов; при малом числе метрики класса шумные.",
        "not a quality score: it shows the class balance; with few windows the class's metrics are noisy.",
    ),
    "metric.what.n": (
        "число окон (примеров), на которых посчитаны метрики.",
        "the number of windows (examples) scored.",
    ),
    "metric.good.n": (
        "не оценка качества; чем больше, тем надёжнее остальные числа. Модели честно сравнимы только на одних и "
        "тех же окнах.",
        "not a quality score; the more, the more reliable the other numbers. Models compare fairly only on the "
        "same windows.",
    ),
    "metric.what.loss": (
        "функция потерь: перекрёстная энтропия предсказанных вероятностей (насколько модель уверена в верном ответе).",
        "the loss: cross-entropy of the predicted probabilities (how sure the model is of the right answer).",
    ),
    "metric.good.loss": (
        "чем ниже, тем лучше; равные вероятности трёх классов дают около 1,10 (ln 3). Если `train_loss` падает, "
        "а `val_loss` растёт, модель переобучается.",
        "the lower, the better; equal probabilities of three classes give about 1.10 (ln 3). When `train_loss` "
        "falls while `val_loss` rises, the model overfits.",
    ),
    "metric.what.brier": (
        "оценка Брайера: средний квадрат ошибки предсказанных вероятностей.",
        "the Brier score: the mean squared error of the predicted probabilities.",
    ),
    "metric.good.brier": (
        "чем ниже, тем лучше; 0 — идеально, равные вероятности трёх классов дают около 0,67.",
        "the lower, the better; 0 is perfect, equal probabilities of three classes give about 0.67.",
    ),
    "metric.what.ece": (
        "ожидаемая ошибка калибровки: насколько уверенность модели расходится с долей её верных ответов.",
        "the expected calibration error: how far the model's confidence is from its share of right answers.",
    ),
    "metric.good.ece": (
        "чем ниже, тем лучше; до 0,05 вероятностям модели можно доверять как вероятностям (порог по "
        "уверенности тогда осмыслен).",
        "the lower, the better; under 0.05 the model's probabilities can be read as probabilities (a "
        "confidence threshold then makes sense).",
    ),
    "metric.what.sharpe": (
        "годовой коэффициент Шарпа стратегии, торгующей по сигналам модели, после комиссий и проскальзывания: "
        "доходность на единицу риска.",
        "the annualised Sharpe ratio of a strategy trading the model's signals, after fees and slippage: return "
        "per unit of risk.",
    ),
    "metric.good.sharpe": (
        "выше 1 — хорошо, выше 2 — отлично, ниже 0 — стратегия теряет деньги; сравнивайте с «купить и "
        "держать». При числе сделок меньше {min_trades} число ничего не значит.",
        "above 1 is good, above 2 excellent, below 0 the strategy loses money; compare it with buy-and-hold. "
        "With fewer than {min_trades} trades the number means nothing.",
    ),
    "metric.what.sharpe_low": (
        "нижняя граница 95%-интервала коэффициента Шарпа (блочный бутстреп).",
        "the lower bound of the Sharpe ratio's 95% interval (block bootstrap).",
    ),
    "metric.good.sharpe_low": (
        "выше 0 — прибыльность вряд ли случайна; широкий интервал — мало данных.",
        "above 0 the profit is unlikely to be luck; a wide interval means little data.",
    ),
    "metric.what.sharpe_high": (
        "верхняя граница 95%-интервала коэффициента Шарпа (блочный бутстреп).",
        "the upper bound of the Sharpe ratio's 95% interval (block bootstrap).",
    ),
    "metric.good.sharpe_high": (
        "ниже 0 — стратегия почти наверняка убыточна; широкий интервал — мало данных.",
        "below 0 the strategy almost surely loses; a wide interval means little data.",
    ),
    "metric.what.total_return": (
        "доходность за весь проверочный период после комиссий (0,05 = +5 %).",
        "the return over the whole tested period after fees (0.05 = +5%).",
    ),
    "metric.good.total_return": (
        "выше 0 и выше доходности «купить и держать» (`backtest_buy_and_hold_total_return`) за тот же период.",
        "above 0 and above buy-and-hold (`backtest_buy_and_hold_total_return`) over the same period.",
    ),
    "metric.what.max_drawdown": (
        "максимальная просадка: наибольшее падение капитала от пика до дна (0,10 = −10 %).",
        "the maximum drawdown: the largest fall of equity from a peak to a trough (0.10 = −10%).",
    ),
    "metric.good.max_drawdown": (
        "чем меньше, тем лучше; сравнивайте с просадкой «купить и держать».",
        "the smaller, the better; compare it with buy-and-hold's.",
    ),
    "metric.what.n_trades": ("число сделок в бэктесте.", "the number of trades in the backtest."),
    "metric.good.n_trades": (
        "не меньше {min_trades}: при меньшем числе Шарп и доходность — дело случая.",
        "at least {min_trades}: with fewer, Sharpe and return are down to chance.",
    ),
    "metric.what.win_rate": ("доля прибыльных сделок.", "the share of profitable trades."),
    "metric.good.win_rate": (
        "сама по себе мало значит — важны и размеры прибылей и убытков; выше 0,5 при положительной доходности — "
        "хороший знак.",
        "means little alone — the sizes of gains and losses matter too; above 0.5 with a positive return is a "
        "good sign.",
    ),
    "metric.what.exposure": (
        "доля баров, когда стратегия в позиции.",
        "the share of bars the strategy holds a position.",
    ),
    "metric.good.exposure": (
        "не оценка качества: показывает, как часто модель торгует.",
        "not a quality score: it shows how often the model trades.",
    ),
    "metric.what.fee": (
        "комиссия за сделку, заложенная в бэктест (0,001 = 0,1 %).",
        "the fee per trade the backtest charges (0.001 = 0.1%).",
    ),
    "metric.good.fee": (
        "условие проверки: не ниже комиссии вашей биржи, иначе бэктест слишком оптимистичен.",
        "a setting of the test: at least your exchange's fee, or the backtest is too optimistic.",
    ),
    "metric.what.slippage": (
        "проскальзывание за сделку, заложенное в бэктест.",
        "the slippage per trade the backtest charges.",
    ),
    "metric.good.slippage": (
        "условие проверки: чем реалистичнее, тем честнее бэктест.",
        "a setting of the test: the more realistic, the more honest the backtest.",
    ),
    "metric.what.n_bars": ("число баров (свечей) бэктеста.", "the number of bars (candles) in the backtest."),
    "metric.good.n_bars": (
        "не оценка качества; бэктесты на разном числе баров напрямую не сравнимы.",
        "not a quality score; backtests over different numbers of bars do not compare directly.",
    ),
    "metric.what.n_series": ("число рядов (символов) в бэктесте.", "the number of series (symbols) in the backtest."),
    "metric.good.n_series": ("не оценка качества.", "not a quality score."),
    "metric.what.periods_per_year": (
        "число баров в году, по которому Шарп переводится в годовой.",
        "bars per year, used to annualise the Sharpe ratio.",
    ),
    "metric.good.periods_per_year": (
        "не оценка качества: следует из таймфрейма.",
        "not a quality score: set by the timeframe.",
    ),
    "metric.what.best_epoch": (
        "эпоха, на которой метрика ранней остановки на валидации была лучшей; сохранены веса этой эпохи.",
        "the epoch with the best early-stopping metric on validation; the model keeps that epoch's weights.",
    ),
    "metric.good.best_epoch": (
        "не оценка качества; если это последняя эпоха, обучение, возможно, стоит продлить.",
        "not a quality score; when it is the last epoch, a longer training may help.",
    ),
    "metric.what.best": (
        "лучшее значение {monitor} за обучение; по нему выбраны сохранённые веса.",
        "the best {monitor} of the training; the kept weights were chosen by it.",
    ),
    "metric.good.best": (
        "оптимистично: по этой же выборке выбиралась эпоха; честная оценка — метрики `test_*`.",
        "optimistic: the epoch was chosen on the same data; the honest score is `test_*`.",
    ),
    "metric.what.learning_rate": (
        "шаг обучения оптимизатора (планировщик его уменьшает по ходу обучения).",
        "the optimiser's learning rate (the scheduler lowers it as training goes).",
    ),
    "metric.good.learning_rate": ("не оценка качества.", "not a quality score."),
    "metric.what.seconds": ("время в секундах.", "time in seconds."),
    "metric.good.seconds": ("не оценка качества.", "not a quality score."),
    "metric.what.folds": ("число фолдов скользящей проверки.", "the number of walk-forward folds."),
    "metric.good.folds": (
        "не оценка качества; чем больше фолдов, тем надёжнее средние.",
        "not a quality score; the more folds, the more reliable the means.",
    ),
    "metric.what.rows": ("число строк (свечей) в проверке дрейфа.", "the number of rows (candles) in the drift check."),
    "metric.good.rows": (
        "не оценка качества; на малом числе строк дрейф не различить.",
        "not a quality score; with few rows drift cannot be told.",
    ),
    "metric.what.psi": (
        "индекс стабильности популяции (PSI): насколько распределение признака на свежих свечах отличается от "
        "данных обучения.",
        "the population stability index (PSI): how far a feature's distribution on recent candles is from the "
        "training data's.",
    ),
    "metric.good.psi": (
        "меньше 0,1 — без изменений, 0,1–0,2 — умеренный сдвиг, больше 0,2 — дрейф (порог по умолчанию; "
        "признак дрейфует, когда и PSI выше порога, и p-значение KS ниже своего).",
        "under 0.1 no change, 0.1–0.2 a moderate shift, above 0.2 drift (the default threshold; a feature "
        "drifts when PSI is above its threshold and the KS p-value below its own).",
    ),
    "metric.what.ks_statistic": (
        "статистика Колмогорова–Смирнова (KS): наибольшее расхождение функций распределения признака, от 0 до 1.",
        "the Kolmogorov–Smirnov (KS) statistic: the largest gap between a feature's distribution functions, 0 to 1.",
    ),
    "metric.good.ks_statistic": (
        "чем меньше, тем ближе распределения; читайте вместе с p-значением.",
        "the smaller, the closer the distributions; read it with the p-value.",
    ),
    "metric.what.ks_pvalue": (
        "p-значение теста KS: вероятность увидеть такое расхождение, если распределение не менялось.",
        "the KS test's p-value: the chance of such a gap if the distribution had not changed.",
    ),
    "metric.good.ks_pvalue": (
        "выше 0,01 (порог по умолчанию) — сдвига не видно. На тысячах свечей p-значения бывают крошечными и при "
        "малом сдвиге, поэтому дрейф засчитывается только вместе с PSI.",
        "above 0.01 (the default threshold) no shift is seen. Over thousands of candles p-values get tiny even "
        "for small shifts, so drift counts only together with PSI.",
    ),
    "metric.what.drift_share": ("доля признаков с дрейфом.", "the share of features that drift."),
    "metric.good.drift_share": (
        "ниже порога доли (0,25 по умолчанию) — дрейфа нет и переобучение из-за него не запускается.",
        "below the share threshold (0.25 by default) there is no drift and no retraining for it.",
    ),
    "metric.what.drift_features": ("число признаков с дрейфом.", "the number of features that drift."),
    "metric.good.drift_features": ("чем меньше, тем лучше; 0 — дрейфа нет.", "the fewer, the better; 0 is no drift."),
    "metric.what.dsr": (
        "дефлированный коэффициент Шарпа (DSR): вероятность, что настоящий Шарп лучшей попытки выше нуля, с "
        "поправкой на число испробованных попыток.",
        "the deflated Sharpe ratio (DSR): the probability that the best trial's true Sharpe is above zero, "
        "corrected for the number of trials tried.",
    ),
    "metric.good.dsr": (
        "0,95 и выше — преимущество вряд ли случайно; ниже 0,5 — скорее удача перебора.",
        "0.95 or more: the edge is unlikely to be luck; under 0.5 it is more likely the luck of the search.",
    ),
    "metric.what.psr": (
        "вероятностный коэффициент Шарпа (PSR): вероятность, что настоящий Шарп выше нуля, без поправки на "
        "число попыток.",
        "the probabilistic Sharpe ratio (PSR): the probability that the true Sharpe is above zero, not "
        "corrected for the number of trials.",
    ),
    "metric.good.psr": ("0,95 и выше; DSR строже.", "0.95 or more; DSR is the stricter one."),
    "metric.what.pbo": (
        "вероятность переобучения бэктеста (PBO): как часто попытка, лучшая на одной половине данных, "
        "оказывается ниже медианы на другой.",
        "the probability of backtest overfitting (PBO): how often the trial best on one half of the data "
        "falls below the median on the other.",
    ),
    "metric.good.pbo": (
        "чем ниже, тем лучше; 0,5 и выше — выбор лучшей попытки не лучше монетки.",
        "the lower, the better; 0.5 or more: picking the best trial is no better than a coin.",
    ),
    "metric.split.test": (
        "тестовая выборка — последние по времени окна, которые модель не видела ни при обучении, ни при выборе "
        "эпохи. Честная оценка.",
        "the test split — the latest windows, seen neither in training nor when the epoch was chosen. The "
        "honest score.",
    ),
    "metric.split.val": (
        "валидационная выборка — окна между обучающими и тестовыми; по ней выбираются лучшая эпоха и ранняя "
        "остановка, поэтому оценка немного оптимистична.",
        "the validation split — the windows between train and test; the best epoch and early stopping are "
        "chosen on it, so the score is a little optimistic.",
    ),
    "metric.split.train": (
        "обучающая выборка (по эпохам).",
        "the training split (per epoch).",
    ),
    "metric.split.batch": (
        "один шаг оптимизатора на пакете обучающих окон.",
        "one optimiser step on a batch of training windows.",
    ),
    "metric.split.baseline_majority": (
        "тестовая выборка, правило без модели «всегда самый частый класс обучающей выборки» — мерило для модели.",
        "the test split, scored by the rule “always the training split's most frequent class” — the model's yardstick.",
    ),
    "metric.split.baseline_previous_direction": (
        "тестовая выборка, правило без модели «повторить направление последнего движения» — мерило для модели.",
        "the test split, scored by the rule “repeat the last move's direction” — the model's yardstick.",
    ),
    "metric.split.backtest": (
        "бэктест на тестовой выборке: сделки по сигналам модели с комиссией и проскальзыванием, исполнение по "
        "открытию следующей свечи.",
        "the backtest on the test split: trades on the model's signals with fees and slippage, filled at the "
        "next candle's open.",
    ),
    "metric.split.buy_and_hold": (
        "те же тестовые бары, стратегия «купить и держать» — мерило для бэктеста модели.",
        "the same test bars, a buy-and-hold strategy — the yardstick for the model's backtest.",
    ),
    "metric.split.walk_forward": (
        "скользящая проверка при переобучении: модель заново обучается на нескольких последовательных "
        "отрезках и проверяется на следующем за каждым. Это не тестовая выборка одного обучения.",
        "walk-forward validation in a retraining: the model is retrained on several consecutive periods and "
        "tested on the one after each. It is not one training's test split.",
    ),
    "metric.split.recent": (
        "свежие свечи после обучения, исход которых уже известен (проверка падения качества).",
        "recent candles after the training whose outcome is known (the performance-drop check).",
    ),
    "metric.split.production": (
        "те же фолды скользящей проверки, текущая версия в production.",
        "the same walk-forward folds, scored by the version now in production.",
    ),
    "metric.split.drift": (
        "свежие свечи против данных, на которых обучена версия в production, по каждому признаку.",
        "recent candles against the data the production version was trained on, feature by feature.",
    ),
    "metric.split.tuning": (
        "все попытки подбора гиперпараметров одного исследования.",
        "all trials of one hyperparameter study.",
    ),
    "metric.split.none": ("не относится к выборке.", "not tied to a split."),
    # -- help page: the metrics glossary and the guide's filters on this store --------------------
    "glossary.metrics": ("Метрики: что значит каждое число", "Metrics: what each number means"),
    "glossary.metrics_intro": (
        "Те же пояснения — в подсказке «?» у каждой метрики на страницах. Модель хороша, только если её "
        "тестовые метрики выше базовых уровней на тех же окнах, а бэктест — выше «купить и держать» при "
        "достаточном числе сделок.",
        "The same explanations are in each metric's “?” tooltip on the pages. A model is good only when its "
        "test metrics beat the baselines on the same windows and its backtest beats buy-and-hold with enough "
        "trades.",
    ),
    "glossary.col.metric": ("Метрика", "Metric"),
    "glossary.col.what": ("Что измеряет", "What it measures"),
    "glossary.col.split": ("На каких данных", "On which data"),
    "glossary.col.good": ("Хорошее значение", "A good value"),
    "glossary.names": ("Имена из руководства", "The guide's names"),
    "glossary.names_intro": (
        "Руководство называет метрики и параметры по-своему. Каждый запуск обучения записывает и эти имена — "
        "с теми же значениями, что имена проекта, — поэтому фильтры и примеры руководства работают как "
        "написаны.",
        "The guide names some metrics and params its own way. Every training run logs those names too — with "
        "the same values as the project's names — so the guide's filters and examples work as written.",
    ),
    "glossary.col.guide_name": ("Имя в руководстве", "The guide's name"),
    "glossary.col.project_name": ("Имя в проекте", "The project's name"),
    "glossary.guide_examples": ("Примеры из руководства на ваших запусках", "The guide's examples on your runs"),
    "glossary.guide_examples_intro": (
        "Каждый пример выполнен на этом хранилище. Пороги руководства (accuracy 0,85, 50 эпох, hidden_size "
        "128) рассчитаны на полноценное обучение; если пример в записанном виде ничего не находит, рядом — "
        "вариант с теми же именами и значениями последнего запуска, где они есть (пороги округлены до сотых). "
        "Скопируйте рабочий фильтр в поле «Фильтр» на странице «Эксперименты и запуски» и выберите "
        "эксперимент из последнего столбца.",
        "Each example was run on this store. The guide's thresholds (accuracy 0.85, 50 epochs, hidden_size "
        "128) are meant for a full training; when an example as written finds nothing, a variant beside it has "
        "the same names and the values of the latest run that carries them (thresholds rounded to hundredths). "
        "Copy the working filter into “Filter” on “Experiments and runs” and choose an experiment from the last "
        "column.",
    ),
    "glossary.col.as_written": ("Как в руководстве", "As the guide writes it"),
    "glossary.col.found": ("Находит", "Finds"),
    "glossary.col.variant": ("Рабочий вариант", "Working variant"),
    "glossary.col.variant_found": ("Вариант находит", "The variant finds"),
    "glossary.col.experiments": ("Эксперименты", "Experiments"),
    "glossary.same_as_guide": ("как написано", "as written"),
    "glossary.no_variant": (
        "нет запуска с этими именами",
        "no run carries these names",
    ),
    "glossary.examples_empty": (
        "Запусков пока нет: примеры можно будет проверить после первого обучения (страница «Обучение»).",
        "No runs yet: the examples can be tried after the first training (the “Training” page).",
    ),
    "glossary.working_filters": (
        "Рабочие фильтры для копирования:",
        "The working filters, to copy:",
    ),
    # -- runs: filter errors from structured hints (services.runs.FilterHint) ---------------------
    "runs.filter_error.missing_prefix": (
        "MLflow не знает ключа `{name}` без префикса: добавьте префикс {prefix}. — `{prefix}.{name}`. "
        "Метрики пишутся как metrics.<имя>, параметры — params.<имя>, теги — tags.<имя>.",
        "MLflow does not know the key `{name}` without a prefix: add the prefix {prefix}. — `{prefix}.{name}`. "
        "Metrics are metrics.<name>, params params.<name>, tags tags.<name>.",
    ),
    "runs.filter_error.quote_value": (
        "Значение параметра или тега — строка: возьмите его в одинарные кавычки, например "
        "`params.trainer_epochs = '50'`.",
        "A param or tag value is a string: put it in single quotes, e.g. `params.trainer_epochs = '50'`.",
    ),
    "runs.filter_error.number_expected": (
        "Значение метрики — число без кавычек, например `metrics.val_accuracy > 0.7` (получено: `{value}`).",
        "A metric value is a number without quotes, e.g. `metrics.val_accuracy > 0.7` (got: `{value}`).",
    ),
    "runs.filter_error.comparator": (
        "Оператор `{value}` здесь не подходит: для `{prefix}.{name}` допустимы {allowed}. Параметры и теги — "
        "строки: их сравнивают на равенство или по шаблону (LIKE), а «больше/меньше» — только у метрик.",
        "The operator `{value}` does not fit here: `{prefix}.{name}` takes {allowed}. Params and tags are "
        "strings: compare them for equality or with a pattern (LIKE); greater/less is for metrics only.",
    ),
    "runs.filter_error.no_or": (
        "В фильтрах MLflow нет OR: соединяйте условия через AND или выполните два поиска.",
        "MLflow filters have no OR: join conditions with AND, or search twice.",
    ),
    "runs.filter_error.attribute": (
        "У запуска нет атрибута `{name}`. Атрибуты: {allowed}. Метрики, параметры и теги пишутся с префиксами "
        "metrics., params., tags.",
        "A run has no attribute `{name}`. The attributes are {allowed}. Metrics, params and tags take the "
        "prefixes metrics., params., tags.",
    ),
    "runs.filter_error.clause": (
        "Условие не разобрано ({value}). Каждое условие — <тип>.<имя> <оператор> <значение>, например "
        "`metrics.val_accuracy > 0.7`; между условиями — AND; имя с пробелом или дефисом — в обратных "
        "кавычках.",
        "A condition was not parsed ({value}). Each condition is <kind>.<name> <operator> <value>, e.g. "
        "`metrics.val_accuracy > 0.7`; AND between conditions; a name with a space or a hyphen in backticks.",
    ),
    "runs.filter_error.other": (
        "MLflow не принял фильтр. Проверьте: метрики — metrics.<имя> и число, параметры и теги — "
        "params.<имя> / tags.<имя> и значение в одинарных кавычках, между условиями — AND.",
        "MLflow refused the filter. Check: metrics are metrics.<name> with a number, params and tags "
        "params.<name> / tags.<name> with a value in single quotes, AND between conditions.",
    ),
    "runs.filter_fix": ("Исправленный фильтр:", "The corrected filter:"),
    "runs.filter_examples_link": (
        "Примеры руководства, проверенные на ваших запусках, — «Справка»",
        "The guide's examples tried on your runs — “Help”",
    ),
    "runs.filter_fix_apply": ("Подставить исправленный фильтр", "Use the corrected filter"),
    "runs.filter_mlflow_message": ("Сообщение MLflow (как есть)", "MLflow's message (as it is)"),
    "runs.empty_experiment": (
        "В этом эксперименте пока нет запусков.",
        "This experiment has no runs yet.",
    ),
    "runs.filter_unknown_keys": (
        "Ни у одного запуска эксперимента {experiment} нет {keys}: проверьте имя (список — на странице "
        "«Справка») или выберите другой эксперимент.",
        "No run of experiment {experiment} carries {keys}: check the name (the list is on “Help”) or choose "
        "another experiment.",
    ),
    # -- help page -----------------------------------------------------------------------------
    "glossary.title": ("Справка", "Help"),
    "glossary.intro": (
        "Интерфейс MLflow не переведён на русский и не умеет переключать язык, поэтому у проекта своя "
        "панель: те же эксперименты, запуски и модели, по-русски (английский — переключателем слева). "
        "Панель читает и меняет данные только через сервисный слой проекта — тот же, что у REST API.",
        "MLflow's interface has no translations and no language switch, so the project has its own "
        "dashboard: the same experiments, runs and models, in Russian by default (English on the switch "
        "in the sidebar). It reads and changes data only through the project's service layer — the same "
        "one the REST API uses.",
    ),
    "glossary.terms": ("Словарь терминов", "Glossary"),
    "glossary.mlflow_note": (
        "Столбец «В MLflow» — название термина в интерфейсе и API MLflow.",
        "The “In MLflow” column is the term's name in MLflow's interface and API.",
    ),
    "glossary.col.term": ("Термин", "Term"),
    "glossary.col.mlflow": ("В MLflow", "In MLflow"),
    "glossary.col.desc": ("Что это", "What it is"),
    "glossary.col.where": ("Где на панели", "Where on the dashboard"),
    "glossary.filters": ("Фильтры запусков", "Run filters"),
    "glossary.faq": ("Ответы на вопросы из руководства", "Answers to the guide's questions"),
    "glossary.faq1.q": (
        "Можно ли сделать интерфейс MLflow на русском языке?",
        "Can the MLflow interface be in Russian?",
    ),
    "glossary.faq1.a": (
        "Сам MLflow UI — нет: в нём нет перевода и выбора языка. Поэтому есть эта панель: она на русском, "
        "показывает то же, что MLflow UI (эксперименты, запуски, сравнение, модели), и умеет больше — "
        "обучение, переобучение, дрейф.",
        "MLflow's own UI cannot: it has no translations and no language selector. Hence this dashboard: "
        "it shows what the MLflow UI shows (experiments, runs, comparison, models) and more — training, "
        "retraining, drift.",
    ),
    "glossary.faq2.q": ("Почему у моделей были пустые теги?", "Why were the models' tags empty?"),
    "glossary.faq2.a": (
        "Теперь каждая версия регистрируется с тегами: эксперимент, run_id, символ, таймфрейм, хеш данных и "
        "ключевые метрики (test_accuracy, test_f1_macro, backtest_sharpe). Смотрите «Модели» → «Теги».",
        "Every version is now registered with tags: experiment, run_id, symbol, timeframe, data hash and the "
        "key metrics (test_accuracy, test_f1_macro, backtest_sharpe). See “Models” → “Tags”.",
    ),
    "glossary.faq3.q": ("Почему схема входа и выхода была пустой?", "Why was the input/output schema empty?"),
    "glossary.faq3.a": (
        "Модель теперь логируется с сигнатурой и примером входа. Схема показана в «Модели» → «Схема входа и выхода».",
        "The model is now logged with a signature and an input example. The schema is in “Models” → "
        "“Input and output schema”.",
    ),
    "glossary.faq4.q": ("Почему модели в разных экспериментах?", "Why are models in different experiments?"),
    "glossary.faq4.a": (
        "Ручное обучение пишет в `model_training`, автоматическое переобучение — в `auto_retraining`, "
        "`trading_bot_ml` — эксперимент по умолчанию. Назначение каждого видно на странице «Эксперименты "
        "и запуски».",
        "Manual training writes to `model_training`, automatic retraining to `auto_retraining`; "
        "`trading_bot_ml` is the default experiment. Each one's purpose is shown on “Experiments and runs”.",
    ),
    # -- experiments ---------------------------------------------------------------------------
    "experiment.no_description": ("Описание не задано.", "No description."),
    "experiment.purpose.trading_bot_ml": (
        "Эксперимент по умолчанию: общие и разовые запуски.",
        "The default experiment: general and ad-hoc runs.",
    ),
    "experiment.purpose.model_training": (
        "Ручное обучение через TrainingOrchestrator.",
        "Manual training through TrainingOrchestrator.",
    ),
    "experiment.purpose.auto_retraining": (
        "Автоматическое переобучение (RetrainingPipeline).",
        "Automatic retraining (RetrainingPipeline).",
    ),
    "experiment.purpose.Default": (
        "Служебный эксперимент MLflow по умолчанию; проект в него не пишет.",
        "MLflow's built-in default experiment; the project does not write to it.",
    ),
    # -- overview ------------------------------------------------------------------------------
    "overview.title": ("Обзор", "Overview"),
    "overview.caption": (
        "Что сейчас в production, последние запуски, задачи и дрейф.",
        "What is in production now, the latest runs, jobs and drift.",
    ),
    "overview.production": ("Модели в production", "Models in production"),
    "overview.no_models": (
        "В реестре пока нет моделей. Запустите обучение на странице «Обучение».",
        "The registry has no models yet. Start a training on the “Training” page.",
    ),
    "overview.no_production": (
        "Ни одна версия не продвинута в production (последняя версия: {latest}).",
        "No version is in production (latest version: {latest}).",
    ),
    "overview.version": ("Версия в production", "Production version"),
    "overview.promoted": ("**{how}** {when}, кто: {actor}", "**{how}** {when} by {actor}"),
    "overview.forced": ("Продвинута без проверки (принудительно).", "Promoted past the gate (forced)."),
    "overview.reason": ("Причина, как она записана в истории:", "The reason, as the history records it:"),
    "overview.gate": ("Заключение проверки качества", "The quality gate's verdict"),
    "overview.no_history": ("История продвижения не найдена.", "No promotion history found."),
    "overview.open_model": ("Открыть модель", "Open the model"),
    "overview.latest_runs": ("Последние запуски", "Latest runs"),
    "overview.all_runs": ("Все запуски", "All runs"),
    "overview.no_runs": ("Запусков пока нет.", "No runs yet."),
    "overview.jobs": ("Текущие задачи", "Active jobs"),
    "overview.no_jobs": ("Нет выполняющихся задач и задач в очереди.", "No job is running or queued."),
    "overview.to_training": ("Запустить обучение", "Start a training"),
    "overview.drift": ("Дрейф данных", "Data drift"),
    "overview.drift_no_models": (
        "Дрейф проверяется для моделей в production; таких пока нет.",
        "Drift is checked for models in production; there are none yet.",
    ),
    "overview.drift_none": ("{name}: проверок дрейфа ещё не было.", "{name}: no drift check yet."),
    "overview.drift_yes": (
        "{name}: обнаружен дрейф (проверка {when}, доля признаков {share}).",
        "{name}: drift detected (checked {when}, feature share {share}).",
    ),
    "overview.drift_no": (
        "{name}: дрейфа нет (проверка {when}, доля признаков {share}).",
        "{name}: no drift (checked {when}, feature share {share}).",
    ),
    "overview.to_drift": ("Подробнее о переобучении и дрейфе", "Retraining and drift in detail"),
    # -- runs ----------------------------------------------------------------------------------
    "runs.title": ("Эксперименты и запуски", "Experiments and runs"),
    "runs.no_experiments": ("Экспериментов пока нет.", "No experiments yet."),
    "runs.experiment": ("Эксперимент", "Experiment"),
    "runs.filter": ("Фильтр (синтаксис MLflow)", "Filter (MLflow syntax)"),
    "runs.filter_help": (_FILTER_RU, _FILTER_EN),
    "runs.filter_guide": ("Как писать фильтр — примеры из руководства", "How to write a filter — the guide's examples"),
    "runs.filter_guide_text": (
        "Фильтр — условия на метрики, параметры, теги и атрибуты запуска, соединённые словом `AND` "
        "(`OR` MLflow не поддерживает).\n\n"
        "- `metrics.<имя>` — число; операторы `=`, `!=`, `>`, `>=`, `<`, `<=`;\n"
        "- `params.<имя>` и `tags.<имя>` — строка в одинарных кавычках; операторы `=`, `!=`, `LIKE` и "
        "`ILIKE` (шаблон с `%`), `IS NULL`, `IS NOT NULL`;\n"
        "- `attributes.status`, `attributes.run_name`, `attributes.start_time` — атрибуты запуска.\n\n"
        "Примеры из руководства:",
        "A filter is conditions on a run's metrics, params, tags and attributes, joined with `AND` "
        "(MLflow has no `OR`).\n\n"
        "- `metrics.<name>` — a number; operators `=`, `!=`, `>`, `>=`, `<`, `<=`;\n"
        "- `params.<name>` and `tags.<name>` — a string in single quotes; operators `=`, `!=`, `LIKE` and "
        "`ILIKE` (a pattern with `%`), `IS NULL`, `IS NOT NULL`;\n"
        "- `attributes.status`, `attributes.run_name`, `attributes.start_time` — run attributes.\n\n"
        "The guide's examples:",
    ),
    "runs.filter_guide_more": (
        "Имя с пробелом или дефисом берут в обратные кавычки: ``metrics.`val-acc` > 0.7``. Если MLflow не "
        "примет фильтр, вместо таблицы появится объяснение, что неверно, и, где это возможно, исправленный "
        "фильтр.",
        "Quote a name with a space or a hyphen in backticks: ``metrics.`val-acc` > 0.7``. If MLflow refuses "
        "the filter, the table gives way to what is wrong and, where possible, the corrected filter.",
    ),
    "runs.sort": ("Сортировка", "Sort by"),
    "runs.sort.start_time": ("время начала", "start time"),
    "runs.sort.end_time": ("время окончания", "end time"),
    "runs.sort.run_name": ("имя запуска", "run name"),
    "runs.direction": ("Порядок", "Order"),
    "runs.direction.DESC": ("по убыванию", "descending"),
    "runs.direction.ASC": ("по возрастанию", "ascending"),
    "runs.page_size": ("На странице", "Per page"),
    "runs.bad_filter": (
        "MLflow не разобрал фильтр. Сообщение разборщика:",
        "MLflow could not parse the filter. The parser says:",
    ),
    "runs.table": ("Запуски эксперимента {experiment}", "Runs of experiment {experiment}"),
    "runs.empty": ("Нет запусков, подходящих под фильтр.", "No runs match the filter."),
    "runs.metric_columns": ("Метрики в таблице", "Metrics in the table"),
    "runs.param_columns": ("Параметры в таблице", "Parameters in the table"),
    "runs.select_hint": (
        "Отметьте строку, чтобы открыть запуск, или 2–5 строк, чтобы сравнить их.",
        "Tick a row to open its run, or 2–5 rows to compare them.",
    ),
    "runs.prev": ("← Предыдущая", "← Previous"),
    "runs.next": ("Следующая →", "Next →"),
    "runs.page_info": ("Страница {page} · запусков на ней: {count}", "Page {page} · {count} runs on it"),
    "runs.compare_selected": ("Сравнить выбранные ({n})", "Compare the selected ({n})"),
    "runs.compare_too_many": ("Сравнить можно не больше пяти запусков.", "At most five runs can be compared."),
    "runs.open": ("Открыть запуск", "Open a run"),
    "runs.open_placeholder": ("Выберите запуск из таблицы или списка", "Choose a run from the table or the list"),
    # -- one run -------------------------------------------------------------------------------
    "run.heading": ("Запуск {name}", "Run {name}"),
    "run.summary": (
        "**Статус:** {status} · **Эксперимент:** `{experiment}` · **Начало:** {started} · **Длительность:** {duration}",
        "**Status:** {status} · **Experiment:** `{experiment}` · **Started:** {started} · **Duration:** {duration}",
    ),
    "run.ids": ("ID запуска: `{run_id}` · артефакты: `{uri}`", "Run ID: `{run_id}` · artifacts: `{uri}`"),
    "run.tab.curves": ("Кривые обучения", "Learning curves"),
    "run.tab.metrics": ("Метрики", "Metrics"),
    "run.tab.params": ("Параметры", "Parameters"),
    "run.tab.tags": ("Теги", "Tags"),
    "run.tab.artifacts": ("Артефакты", "Artifacts"),
    "run.curve_metrics": ("Метрики на графиках", "Metrics on the charts"),
    "run.chart.loss": ("Функция потерь", "Loss"),
    "run.chart.quality": ("Качество", "Quality"),
    "run.no_curves": (
        "Нет метрик с историей по шагам: кривую построить не из чего.",
        "No metric has a history over steps: there is no curve to draw.",
    ),
    "run.system_tags": ("Показать служебные теги MLflow", "Show MLflow's system tags"),
    "run.folder": ("папка", "folder"),
    "run.file": ("файл", "file"),
    "run.no_artifacts": ("У запуска нет артефактов.", "The run has no artifacts."),
    "run.artifacts_truncated": ("Показана только часть артефактов.", "Only part of the artifacts is shown."),
    "run.datasets": ("**Датасеты запуска**", "**Datasets of the run**"),
    # -- comparison ----------------------------------------------------------------------------
    "compare.title": ("Сравнение запусков", "Run comparison"),
    "compare.caption": (
        "От двух до пяти запусков рядом: различающиеся значения подсвечены, истории метрик — на общих графиках.",
        "Two to five runs side by side: differing values highlighted, metric histories on shared charts.",
    ),
    "compare.runs": ("Запуски для сравнения", "Runs to compare"),
    "compare.pick": ("Выберите от {min} до {max} запусков.", "Choose {min} to {max} runs."),
    "compare.summary": ("Запуски", "Runs"),
    "compare.params": ("Параметры", "Parameters"),
    "compare.metrics": ("Итоговые метрики", "Final metrics"),
    "compare.curves": ("Истории метрик", "Metric histories"),
    "compare.no_diff": ("Различий нет.", "No differences."),
    # -- tables and drift charts (runs, a run's metrics, comparison, drift) ---------------------
    "tables.more_columns": ("Другие столбцы", "More columns"),
    "tables.more_columns_help": (
        "Главные столбцы видны всегда: запуск, статус, точность и F1 на тесте, Sharpe бэктеста, начало. "
        "Остальные метрики и параметры, длительность и ID запуска добавьте здесь: они встанут после главных.",
        "The key columns are always shown: run, status, test accuracy and F1, backtest Sharpe, start. Add other "
        "metrics and parameters, the duration and the run ID here: they go after the key ones.",
    ),
    "tables.show_details": ("Длительность и ID запуска", "Duration and run ID"),
    "tables.no_metrics": ("Запуск не записал метрик.", "The run logged no metrics."),
    "tables.metrics_caption": (
        "Метрики по группам: модель на тесте рядом с наивными стратегиями, бэктест рядом с buy-and-hold. "
        "Счётчики (окна, сделки, бары, эпохи) — целыми числами; «—» — такая метрика не записана.",
        "Metrics in groups: the model on the test set beside the naive baselines, the backtest beside "
        "buy-and-hold. Counts (windows, trades, bars, epochs) are integers; '—': no such metric was logged.",
    ),
    "tables.group.test": ("Тест и наивные стратегии ({n})", "Test and naive baselines ({n})"),
    "tables.group.backtest": ("Бэктест и buy-and-hold ({n})", "Backtest and buy-and-hold ({n})"),
    "tables.group.validation": ("Обучение и валидация ({n})", "Training and validation ({n})"),
    "tables.group.walk_forward": ("Скользящая проверка, walk-forward ({n})", "Walk-forward validation ({n})"),
    "tables.group.other": ("Прочие ({n})", "Other ({n})"),
    "tables.only_meaningful": ("Только значимые различия", "Meaningful differences only"),
    "tables.legend": (
        "Подсвечены строки, где значения различаются больше чем на {pct} % (от большего по модулю); строки, "
        "которые есть не у всех запусков, и время выполнения не подсвечиваются: {n} из {total}.",
        "Highlighted: rows whose values differ by more than {pct} % (of the larger magnitude); rows that not "
        "every run has and run times are not: {n} of {total}.",
    ),
    "tables.data_heading": ("На каких данных проверены", "What data they were tested on"),
    "tables.data_key": ("Данные", "Data"),
    "tables.different_data": (
        "Запуски обучены и проверены на разных данных (различаются: {what}): их метрики нельзя сравнивать напрямую.",
        "The runs were trained and tested on different data (differing: {what}): their metrics are not "
        "directly comparable.",
    ),
    "tables.same_data": (
        "Все запуски проверены на одних и тех же данных: хеш данных и число строк совпадают.",
        "All runs were tested on the same data: the data hash and the row counts match.",
    ),
    "drift.psi_chart": (
        "PSI по признакам: чем выше столбец, тем сильнее сдвиг",
        "PSI per feature: the taller the bar, the larger the shift",
    ),
    "drift.ks_chart": (
        "Тест Колмогорова–Смирнова, −log10 p: чем выше столбец, тем сильнее сдвиг",
        "Kolmogorov–Smirnov test, −log10 p: the taller the bar, the larger the shift",
    ),
    "drift.neg_log10_p": ("−log10 p-значения KS", "−log10 of the KS p-value"),
    "drift.psi_line": ("порог PSI {value}", "PSI threshold {value}"),
    "drift.ks_line": ("порог p = {p}, то есть −log10 p = {height}", "threshold p = {p}, i.e. −log10 p = {height}"),
    "drift.charts_caption": (
        "Оба графика читаются одинаково: выше — сильнее сдвиг, пунктир — порог, красный столбец — признак "
        "сместился (выше своего порога PSI и выше порога KS). p-значения меньше {floor} нарисованы на высоте "
        "{cap}; точные — при наведении и в таблице по признакам.",
        "Both charts read the same way: taller is a larger shift, the dashed line is the threshold, a red bar "
        "is a feature that drifted (above its PSI limit and above the KS line). p-values below {floor} are "
        "drawn at {cap}; the exact ones are in the hover and the per-feature table.",
    ),
    # -- models --------------------------------------------------------------------------------
    "models.title": ("Модели", "Models"),
    "models.none": ("В реестре пока нет моделей.", "The registry has no models yet."),
    "models.model": ("Модель", "Model"),
    "models.production": ("В production", "In production"),
    "models.latest": ("Последняя версия", "Latest version"),
    "models.count": ("Версий", "Versions"),
    "models.aliases_line": ("**Алиасы:** {aliases}", "**Aliases:** {aliases}"),
    "models.no_tags": ("Тегов нет.", "No tags."),
    "models.versions": ("Версии", "Versions"),
    "models.no_versions": ("У модели нет версий.", "The model has no versions."),
    "models.version": ("Версия", "Version"),
    "models.version_heading": ("{name}, версия {version}", "{name}, version {version}"),
    "models.tab.schema": ("Схема входа и выхода", "Input and output schema"),
    "models.tab.tags": ("Теги", "Tags"),
    "models.tab.about": ("Сведения", "Details"),
    "models.inputs": ("Вход", "Input"),
    "models.outputs": ("Выход", "Output"),
    "models.no_signature": (
        "У версии нет сигнатуры: схема входа и выхода неизвестна.",
        "The version has no signature: its input and output schema is unknown.",
    ),
    "models.mlmodel_error": ("Файл MLmodel не прочитан:", "The MLmodel file could not be read:"),
    "models.about": (
        "URI модели: `{uri}`  \nФлейворы: {flavors}  \nПример входа сохранён: {example}",
        "Model URI: `{uri}`  \nFlavors: {flavors}  \nInput example saved: {example}",
    ),
    "models.open_run": ("Запуск, из которого создана версия ({run})", "The run this version came from ({run})"),
    "models.history": ("История продвижения", "Promotion history"),
    "models.no_history": ("История пуста.", "The history is empty."),
    "models.actions": ("Продвижение и откат", "Promotion and rollback"),
    "models.promote": ("Продвинуть в production", "Promote to production"),
    "models.nothing_to_promote": ("Других версий нет.", "There are no other versions."),
    "models.promote_version": ("Версия", "Version"),
    "models.reason": ("Причина (для истории)", "Reason (for the history)"),
    "models.force": ("Без проверки качества", "Skip the quality gate"),
    "models.force_help": (
        "Продвинуть, даже если проверка отказала бы; в истории будет отмечено.",
        "Promote even if the gate would refuse; the history records it.",
    ),
    "models.confirm_promote": (
        "Подтверждаю: перевести production модели {name} на версию v{version}",
        "I confirm: move {name}'s production to version v{version}",
    ),
    "models.promote_button": ("Продвинуть", "Promote"),
    "models.rollback": ("Откатить production", "Roll production back"),
    "models.nothing_in_production": (
        "В production ничего нет — откатывать нечего.",
        "Nothing is in production — nothing to roll back.",
    ),
    "models.rollback_text": (
        "Сейчас в production v{version}. Откат вернёт предыдущую production-версию.",
        "Production is v{version} now. A rollback restores the previous production version.",
    ),
    "models.confirm_rollback": (
        "Подтверждаю: откатить production модели {name} с версии v{version}",
        "I confirm: roll {name}'s production back from v{version}",
    ),
    "models.rollback_button": ("Откатить", "Roll back"),
    "models.promoted": (
        "Готово: production переведён с v{frm} на v{to}.",
        "Done: production moved from v{frm} to v{to}.",
    ),
    "models.refused": (
        "Проверка отказала, production не изменён. Заключение проверки:",
        "The gate refused; production unchanged. Its verdict:",
    ),
    "models.rolled_back": ("Готово: откат с v{frm} на v{to}.", "Done: rolled back from v{frm} to v{to}."),
    # -- models: the "for the bot" panel ---------------------------------------------------------
    "models.tab.bot": ("Для бота", "For the bot"),
    "models.bot.intro": (
        "Что загрузить боту, чтобы получать прогнозы этой версии, и что ей подать на вход.",
        "What the bot loads to get this version's predictions, and what it feeds it.",
    ),
    "models.bot.uris": ("Адрес модели (URI)", "Model address (URI)"),
    "models.bot.uri_production": (
        "Версия в production — бот следует за алиасом и подхватывает новую версию после продвижения "
        "(сейчас это v{production}):",
        "The production version — the bot follows the alias and picks up a new version after a promotion "
        "(now v{production}):",
    ),
    "models.bot.uri_pinned": (
        "Ровно эта версия (v{version}), без подмены:",
        "Exactly this version (v{version}), pinned:",
    ),
    "models.bot.not_production": (
        'Эта версия не в production: `Predictor("{name}")` и REST `/predict` отвечают версией v{production}, '
        "для этой версии используйте закреплённый URI.",
        'This version is not in production: `Predictor("{name}")` and REST `/predict` answer with v{production}; '
        "use the pinned URI for this version.",
    ),
    "models.bot.no_production": (
        'У модели нет версии в production: `Predictor("{name}")` и REST `/predict` пока не ответят, '
        "используйте закреплённый URI.",
        'The model has no production version: `Predictor("{name}")` and REST `/predict` will not answer yet; '
        "use the pinned URI.",
    ),
    "models.bot.predictor": (
        "Predictor проекта (Python, ONNX Runtime)",
        "The project's Predictor (Python, ONNX Runtime)",
    ),
    "models.bot.pyfunc": ("Модель MLflow (pyfunc)", "MLflow model (pyfunc)"),
    "models.bot.rest": ("REST API: запрос POST /predict", "REST API: a POST /predict request"),
    "models.bot.rest_text": (
        "Сервер API запускается командой `make api` (порт 8000); `/predict` всегда отвечает версией в production, "
        "поле `model_version` ответа говорит, какой именно. Токен не нужен.",
        "The API server starts with `make api` (port 8000); `/predict` always answers with the production version, "
        "the answer's `model_version` field says which. No token is needed.",
    ),
    "models.bot.code.production": (
        "версия в production, следит за алиасом (горячая замена)",
        "the production version, follows the alias (hot reload)",
    ),
    "models.bot.code.pinned": ("ровно эта версия", "exactly this version"),
    "models.bot.code.candles": (
        "candles: DataFrame со столбцами {columns}, от старых к новым, не меньше {rows} свечей {timeframe}",
        "candles: a DataFrame with columns {columns}, oldest first, at least {rows} candles of {timeframe}",
    ),
    "models.bot.code.answer": ("сигнал, уверенность, вероятности", "signal, confidence, probabilities"),
    "models.bot.code.tracking": ("хранилище MLflow проекта", "the project's MLflow store"),
    "models.bot.code.pyfunc_out": ("столбцы ответа: {columns}", "answer columns: {columns}"),
    "models.bot.code.serve": (
        "та же модель как сервер MLflow (POST /invocations)",
        "the same model as an MLflow server (POST /invocations)",
    ),
    "models.bot.code.body": (
        'candles.json: {{"model_name": "{name}", "symbol": "ETH/BTC", "candles": [не меньше {rows} свечей]}}',
        'candles.json: {{"model_name": "{name}", "symbol": "ETH/BTC", "candles": [at least {rows} candles]}}',
    ),
    "models.bot.schema": ("Вход модели", "Model input"),
    "models.bot.schema_text": (
        "Бот подаёт сырые свечи (таблица ниже); признаки модель считает сама кодом обучения — по последним "
        "{rows} свечам. Внутри модели — окно из {window} свечей × {n} признаков (тензор `[-1, {window}, {n}]` "
        "в ONNX) в таком порядке:",
        "The bot sends raw candles (the table below); the model computes its features itself with the training "
        "code, from the last {rows} candles. Inside, the model sees a window of {window} candles × {n} features "
        "(the ONNX tensor `[-1, {window}, {n}]`) in this order:",
    ),
    "models.bot.no_metadata": (
        "Метаданные версии (artifacts/metadata.json) не прочитаны: признаки и окно неизвестны.",
        "The version's metadata (artifacts/metadata.json) could not be read: its features and window are unknown.",
    ),
    "models.bot.candle_columns": ("Свечи на входе", "Candles in"),
    "models.bot.features": ("Признаки модели по порядку", "The model's features, in order"),
    "models.bot.links": ("В MLflow UI", "In the MLflow UI"),
    "models.bot.link_run": ("Запуск {run}", "Run {run}"),
    "models.bot.link_model": ("Модель {name}, версия {version}", "Model {name}, version {version}"),
    "models.bot.links_help": (
        "Адрес MLflow UI задаёт ML_MLFLOW_UI_URL (сейчас {url}); запуск UI: `python start_mlflow_ui.py`.",
        "The MLflow UI address is ML_MLFLOW_UI_URL (now {url}); start the UI with `python start_mlflow_ui.py`.",
    ),
    "models.bot.plots": ("Графики версии", "The version's plots"),
    "models.bot.plots_help": (
        "Кнопка в углу картинки открывает её во весь экран; «Скачать» сохраняет PNG.",
        'The button in the image\'s corner opens it full screen; "Download" saves the PNG.',
    ),
    "models.bot.no_plots": ("У запуска версии нет графиков.", "The version's run has no plots."),
    "models.bot.download": ("Скачать {file}", "Download {file}"),
    "models.bot.plot.confusion_matrix": ("Матрица ошибок (тест)", "Confusion matrix (test)"),
    "models.bot.plot.equity_curve": (
        "Кривая капитала на тесте с комиссиями: модель и «купи и держи»",
        "Test equity curve with fees: the model and buy & hold",
    ),
    "models.bot.plot.learning_curves": ("Кривые обучения", "Learning curves"),
    "models.bot.plot.reliability": ("Калибровка вероятностей", "Probability calibration"),
    # -- training ------------------------------------------------------------------------------
    "training.title": ("Обучение модели", "Model training"),
    "training.caption": (
        "Задача обучения ставится в очередь и выполняется воркером; проверка полей — та же, что у POST /train.",
        "The training job is queued and run by the worker; the fields are checked exactly as POST /train checks them.",
    ),
    "training.field.model_name": ("Имя модели в реестре", "Registered model name"),
    "training.field.run_name": ("Имя запуска", "Run name"),
    "training.field.data_source": ("Источник свечей", "Candle source"),
    "training.field.epochs": ("Эпохи", "Epochs"),
    "training.field.batch_size": ("Размер батча", "Batch size"),
    "training.field.lr": ("Скорость обучения", "Learning rate"),
    "training.field.date_range": ("Последние N дней данных", "Last N days of data"),
    "training.field.symbols": ("Пары через запятую", "Pairs, comma-separated"),
    "training.field.timeframe": ("Таймфрейм", "Timeframe"),
    "training.field.window": ("Окно, свечей", "Window, candles"),
    "training.field.horizon": ("Горизонт метки, свечей", "Label horizon, candles"),
    "training.field.seed": ("Зерно случайности", "Random seed"),
    "training.field.conv_channels": ("Каналы свёрток", "Convolution channels"),
    "training.field.kernel_size": ("Ядро свёртки (нечётное)", "Kernel size (odd)"),
    "training.field.lstm_hidden": ("Нейронов LSTM", "LSTM units"),
    "training.field.lstm_layers": ("Слоёв LSTM", "LSTM layers"),
    "training.field.dropout": ("Дропаут", "Dropout"),
    "training.field.attention_dim": ("Размер внимания", "Attention size"),
    "training.field.head_hidden": ("Нейронов головы", "Head units"),
    "training.field.export_onnx": ("Экспорт в ONNX", "Export to ONNX"),
    "training.field.auto_promote": ("Продвинуть, если пройдёт проверку", "Promote if it passes the gate"),
    "training.field.min_accuracy_for_promotion": ("Мин. точность для продвижения", "Min. accuracy to promote"),
    "training.field.model": ("Архитектура сети", "Network"),
    "training.auto_promote_help": (
        "Проверка: точность не ниже порога, лучше текущей production-версии, есть сигнатура, ONNX совпадает с PyTorch.",
        "The gate: accuracy at least the threshold, better than the production "
        "version, a signature, ONNX matching PyTorch.",
    ),
    "training.network": ("Архитектура сети (необязательно)", "Network (optional)"),
    "option.conv_channels": ("каналы свёрток по блокам", "convolution channels per block"),
    "option.kernel_size": ("ядро свёртки", "convolution kernel"),
    "option.conv_norm": ("нормализация свёрток", "convolution normalisation"),
    "option.activation": ("функция активации", "activation function"),
    "option.lstm_hidden": ("нейронов LSTM", "LSTM units"),
    "option.lstm_layers": ("слоёв LSTM", "stacked LSTM layers"),
    "option.dropout": ("доля дропаута", "dropout share"),
    "option.bidirectional": ("двунаправленная LSTM", "bidirectional LSTM"),
    "option.attention_dim": ("размер внимания", "attention width"),
    "option.head_hidden": ("нейронов выходного блока", "output head units"),
    "option.channels": ("ширина блоков", "block width"),
    "option.levels": ("остаточных блоков (расширения 1, 2, 4, …)", "residual blocks (dilations 1, 2, 4, …)"),
    "option.n_estimators": ("наибольшее число деревьев", "most trees"),
    "option.learning_rate": ("шаг бустинга", "boosting step"),
    "option.num_leaves": ("листьев в дереве", "leaves per tree"),
    "option.max_depth": ("предел глубины (−1: нет)", "depth limit (−1: none)"),
    "option.min_child_samples": ("наименьшее число строк в листе", "fewest rows in a leaf"),
    "option.feature_fraction": ("доля признаков на дерево", "share of columns per tree"),
    "option.bagging_fraction": ("доля строк на дерево", "share of rows per tree"),
    "option.lambda_l2": ("L2-регуляризация листьев", "L2 regularisation of leaves"),
    "option.early_stopping_rounds": (
        "раундов без улучшения до остановки",
        "rounds without improvement before stopping",
    ),
    "option.class_weight": ("веса классов", "class weights"),
    "option.linear_tree": (
        "линейные модели в листьях (не экспортируется в ONNX)",
        "linear models in leaves (no ONNX export)",
    ),
    "option.lags": ("лаги окна, свечей", "window lags, candles"),
    "option.C": ("обратная сила L2-регуляризации", "inverse L2 strength"),
    "option.max_iter": ("наибольшее число итераций", "most iterations"),
    "sharpe.trades_unknown": ("{sharpe} (число сделок не записано)", "{sharpe} (trades not recorded)"),
    "sharpe.help": (
        "Годовой коэффициент Шарпа бэктеста на тестовой выборке после комиссий, с числом сделок и 95%-интервалом "
        "блочного бутстрепа. При малом числе сделок (меньше 30) число ничего не значит и не показывается.",
        "Annualised Sharpe ratio of the test-split backtest after fees, with its number of trades and 95% "
        "block-bootstrap interval. With few trades (under 30) the number means nothing and is not shown.",
    ),
    "training.field.family": ("Семейство моделей", "Model family"),
    "training.family_help": (
        "Все семейства обучаются на одних и тех же признаках и окнах, регистрируются и обслуживаются через "
        "ONNX Runtime одинаково. Какое из них лучше на ваших данных, показывает страница «Сравнение моделей».",
        "Every family is trained on the same features and windows, registered and served through ONNX Runtime "
        "the same way. Which one is best on your data: see the “Model comparison” page.",
    ),
    "training.family.hybrid_cnn_lstm": (
        "свёртки + LSTM + внимание (по умолчанию)",
        "convolutions + LSTM + attention (default)",
    ),
    "training.family.tcn": ("временная свёрточная сеть (TCN)", "temporal convolutional network (TCN)"),
    "training.family.lightgbm": ("градиентный бустинг деревьев (LightGBM)", "gradient-boosted trees (LightGBM)"),
    "training.family.logreg": ("логистическая регрессия", "logistic regression"),
    "training.options": ("Параметры модели {family} (необязательно)", "Options of {family} (optional)"),
    "training.policy": (
        "Как вероятности превращаются в сделки (бэктест)",
        "How probabilities become trades (backtest)",
    ),
    "training.field.calibrate": ("Калибровать вероятности", "Calibrate probabilities"),
    "training.calibrate_help": (
        "Подбирает температуру на валидационной выборке, чтобы вероятность 0.7 означала примерно 70% попаданий; "
        "температура хранится с версией и применяется при предсказании.",
        "Fits a temperature on the validation split so that a probability of 0.7 means about 70% hits; "
        "the temperature is stored with the version and applied when predicting.",
    ),
    "training.default": ("по умолчанию: {value}", "default: {value}"),
    "training.auto": ("создаётся автоматически", "generated"),
    "training.all_data": ("все данные", "all data"),
    "training.source.default": ("по умолчанию (ML_DATA_PATH)", "default (ML_DATA_PATH)"),
    "training.source.sample": ("встроенные свечи", "bundled candles"),
    "training.source.database": ("таблица свечей в БД", "candles table in the database"),
    "training.submit": ("Запустить обучение", "Start training"),
    "training.invalid": ("Поля заполнены неверно — задача не создана:", "Invalid fields — no job was created:"),
    "training.queued": ("Задача {id} поставлена в очередь.", "Job {id} is queued."),
    "training.progress": ("Ход обучения", "Progress"),
    "training.no_job": (
        "Задача не выбрана: запустите обучение или выберите задачу ниже.",
        "No job chosen: start a training or pick a job below.",
    ),
    "training.recent": ("Недавние задачи обучения", "Recent training jobs"),
    "training.no_jobs": ("Задач обучения ещё не было.", "No training jobs yet."),
    "training.follow": ("Следить за задачей", "Follow a job"),
    "training.cancel": ("Отменить задачу", "Cancel the job"),
    "training.cancel_button": ("Отменить", "Cancel"),
    "training.cancel_sent": ("Отмена запрошена.", "Cancellation requested."),
    # -- yardsticks: headline numbers beside baselines, buy-and-hold, data (dashboard/yardsticks.py) --
    "yard.baselines": ("Базовые линии: {items}", "Baselines: {items}"),
    "yard.baseline.majority": ("самый частый класс", "majority class"),
    "yard.baseline.previous_direction": ("прежнее направление", "previous direction"),
    "yard.better": (":green[Лучше базовых линий.]", ":green[Better than the baselines.]"),
    "yard.not_better": (
        ":red[Не лучше базовой линии: простое правило угадывает не хуже.]",
        ":red[No better than a baseline: a naive rule does as well.]",
    ),
    "yard.no_baselines": ("Базовые линии не записаны.", "No baselines recorded."),
    "yard.delta": ("{diff} к базовой", "{diff} to baseline"),
    "yard.delta_hold": ("{diff} к «купить и держать»", "{diff} to buy and hold"),
    "yard.delta_hold_pp": ("{diff} п. п. к «купить и держать»", "{diff} pp to buy and hold"),
    "yard.hold": ("«Купить и держать» на тех же свечах: {value}", "Buy and hold on the same candles: {value}"),
    "yard.trades_bars": ("Сделок: {trades}, свечей в тесте: {bars}", "Trades: {trades}, test candles: {bars}"),
    "yard.too_few": (
        ":orange[Слишком мало сделок ({n} < {min}): доходность и коэффициент Шарпа ничего не доказывают.]",
        ":orange[Too few trades ({n} < {min}): the return and the Sharpe ratio prove nothing.]",
    ),
    "yard.return_help": (
        "Доходность стратегии бэктеста на тестовой выборке после комиссий; рядом — доходность стратегии "
        "«купить и держать» на тех же свечах.",
        "The backtest strategy's return on the test split after fees; beside it, buy and hold's return on "
        "the same candles.",
    ),
    "yard.no_run": (
        "Запуск этой версии не найден: сравнить её числа не с чем.",
        "This version's run was not found: its numbers have nothing to be compared with.",
    ),
    "yard.data.reference": ("тестовых строк: {rows} (эталон)", "test rows: {rows} (reference)"),
    "yard.data.same": ("те же, что у v{ref}", "the same as v{ref}"),
    "yard.data.other": ("другие данные (строк: {rows}), не как у v{ref}", "other data ({rows} rows), not v{ref}'s"),
    "yard.data_caption": (
        "Столбец «Тестовые данные» сравнивает данные каждой версии с данными v{ref}: метрики версий, "
        "проверенных на других данных, напрямую не сравнимы.",
        "The Test data column compares each version's data with v{ref}'s: the metrics of versions tested on "
        "other data cannot be compared directly.",
    ),
    "yard.description": ("{family} на {data}, {how}", "{family} on {data}, {how}"),
    "yard.mode.manual": ("обучение", "training"),
    "yard.mode.auto_retraining": ("автоматическое переобучение", "automatic retraining"),
    "yard.mode.tuning": ("подбор гиперпараметров", "hyperparameter search"),
    "yard.actor.auto": ("система, сразу после обучения", "the system, right after training"),
    "yard.actor.api": ("запрос к REST API", "a REST API request"),
    "yard.actor.dashboard": ("пользователь панели", "a dashboard user"),
    "yard.actor.manual": ("пользователь вручную", "a user, by hand"),
    "yard.actor.retraining": ("система, переобучение ({trigger})", "the system, retraining ({trigger})"),
    "yard.recorded_description": ("Описание, как оно записано в MLflow", "The description as MLflow records it"),
    "yard.newer": (
        "Есть более новая версия, прошедшая проверку качества: v{version}.",
        "A newer version passed the quality gate: v{version}.",
    ),
    "col.vs_baseline": ("Против базовых линий", "Against the baselines"),
    "col.test_data": ("Тестовые данные", "Test data"),
    "yard.short.better": ("лучше", "better"),
    "yard.short.not_better": ("не лучше", "no better"),
    "yard.reason_tag": (
        "записана до появления кодов проверки: текст — в теге promotion_reason запуска",
        "recorded before the gate's codes: the text is in the run's promotion_reason tag",
    ),
    "yard.failed_tag": (
        "переобучение не удалось: сообщение — в теге failure_reason запуска",
        "the retraining failed: the message is in the run's failure_reason tag",
    ),
    # -- jobs ----------------------------------------------------------------------------------
    "job.heading": ("**Задача: {kind}** `{id}` — {status}", "**Job: {kind}** `{id}` — {status}"),
    "job.progress": ("Эпоха {epoch} из {epochs}", "Epoch {epoch} of {epochs}"),
    "job.queued_hint": (
        "Задача ждёт воркер: `python -m backend.services.worker`.",
        "The job waits for a worker: `python -m backend.services.worker`.",
    ),
    "job.cancel_requested": (
        "Отмена запрошена: обучение остановится после текущего шага.",
        "Cancellation requested: the training stops after the current step.",
    ),
    "job.finished": ("Обучение завершено.", "The training has finished."),
    "job.open_run": ("Открыть запуск {run}", "Open run {run}"),
    "job.open_version": ("Открыть версию {name} v{version}", "Open version {name} v{version}"),
    "job.failed": ("Задача завершилась ошибкой:", "The job failed:"),
    "job.cancelled": ("Задача отменена.", "The job was cancelled."),
    # -- retraining and drift ------------------------------------------------------------------
    "retraining.title": ("Переобучение и дрейф", "Retraining and drift"),
    "retraining.caption": (
        "Запуски конвейера переобучения (эксперимент auto_retraining): причина, решение о "
        "продвижении, walk-forward; отчёт о дрейфе признаков.",
        "Runs of the retraining pipeline (experiment auto_retraining): trigger, promotion "
        "decision, walk-forward; the feature drift report.",
    ),
    "retraining.runs": ("Запуски переобучения", "Retraining runs"),
    "retraining.no_runs": ("Переобучений этой модели ещё не было.", "This model has not been retrained yet."),
    "retraining.chart": (
        "Walk-forward: кандидат и production, доля дрейфа",
        "Walk-forward: candidate and production, drift share",
    ),
    "retraining.drift": ("Отчёт о дрейфе", "Drift report"),
    "retraining.drift_recorded": ("Отчёт записан запуском `{run}` ({when}).", "Recorded by run `{run}` ({when})."),
    "retraining.recheck": ("Посчитать дрейф заново", "Compute the drift again"),
    "retraining.drift_fresh": ("Отчёт только что посчитан.", "The report was just computed."),
    "retraining.recent_days": ("Свежие данные, дней", "Recent data, days"),
    "retraining.pipeline_default": ("как в настройках конвейера", "the pipeline's default"),
    "retraining.check_now": ("Проверить дрейф сейчас", "Check drift now"),
    "retraining.checking": ("Считаю дрейф…", "Computing drift…"),
    "retraining.checked": (
        "Готово: дрейф проверен, отчёт выше обновлён.",
        "Done: drift checked, the report above is updated.",
    ),
    "retraining.verdict_yes": (
        "Дрейф: сместились {n} из {total} признаков (доля {share}).",
        "Drift: {n} of {total} features moved (share {share}).",
    ),
    "retraining.verdict_no": (
        "Дрейфа нет: сместились {n} из {total} признаков (доля {share}).",
        "No drift: {n} of {total} features moved (share {share}).",
    ),
    "retraining.psi": ("PSI", "PSI"),
    "retraining.ks_stat": ("Статистика KS", "KS statistic"),
    "retraining.psi_limit": ("Порог PSI", "PSI limit"),
    "retraining.feature_drifted": ("сместился", "drifted"),
    "retraining.feature_stable": ("стабилен", "stable"),
    "retraining.ks_pvalue": ("p-значение KS", "KS p-value"),
    "retraining.drift_rule": (
        "Признак смещён, если PSI выше его порога (не ниже {psi}) и p-значение KS меньше {ks}; дрейф данных — "
        "если смещено не меньше {share} признаков.",
        "A feature drifted when its PSI exceeds its limit (at least {psi}) and its KS p-value is below {ks}; "
        "the data drifted when at least {share} of the features did.",
    ),
    "retraining.rows": (
        "Сравнивались {current} свежих строк с {reference} строками данных обучения.",
        "{current} recent rows were compared with {reference} rows of training data.",
    ),
    "retraining.drifted_list": ("Сместились: {features}", "Drifted: {features}"),
    "retraining.feature_table": ("Таблица по признакам", "Per-feature table"),
    "retraining.start": ("Запустить переобучение", "Start a retraining"),
    "retraining.jobs": ("Задачи переобучения", "Retraining jobs"),
    "retraining.jobs_caption": (
        "Переобучения, поставленные вручную и по расписанию (python -m backend.services.scheduler): они ждут "
        "свободного слота исполнителя в порядке приоритета и подачи; задачу в очереди можно отменить.",
        "Retrainings queued by hand and by the schedule (python -m backend.services.scheduler): they wait for a "
        "free worker slot by priority, then in submission order; a queued job can be cancelled.",
    ),
    "retraining.no_jobs": ("Задач переобучения ещё не было.", "No retraining jobs yet."),
    "retraining.field.trigger": ("Причина запуска", "Trigger"),
    "retraining.field.force": ("Без проверки причины и паузы", "Skip the trigger check and cooldown"),
    "retraining.field.n_folds": ("Фолдов walk-forward", "Walk-forward folds"),
    "retraining.field.reason": ("Комментарий", "Comment"),
    "retraining.field.epochs": ("Эпохи", "Epochs"),
    "retraining.force_help": (
        "Переобучить, даже если дрейфа или падения качества нет; блокировка всё равно действует.",
        "Retrain even without drift or a performance drop; the lock still applies.",
    ),
    "retraining.submit": ("Поставить в очередь", "Queue it"),
    # -- model comparison (the leaderboard) ----------------------------------------------------
    "nav.leaderboard": ("Сравнение моделей", "Model comparison"),
    "job.kind.leaderboard": ("сравнение моделей", "model comparison"),
    "leaderboard.title": ("Сравнение моделей", "Model comparison"),
    "leaderboard.caption": (
        "Все семейства моделей и простые базовые стратегии на одних и тех же walk-forward фолдах: метрики с "
        "доверительными интервалами, парные тесты против базовых стратегий, вывод. Новое сравнение ставится в "
        "очередь как задача — проверка полей та же, что у POST /leaderboard.",
        "Every model family and the naive baselines on the same walk-forward folds: metrics with confidence "
        "intervals, paired tests against the baselines, a verdict. A new comparison is queued as a job — the "
        "fields are checked exactly as POST /leaderboard checks them.",
    ),
    "leaderboard.none": (
        "Сравнений ещё не было: запустите первое формой ниже.",
        "No comparison has finished yet: start the first one with the form below.",
    ),
    "leaderboard.latest": ("Последнее сравнение", "Latest comparison"),
    "leaderboard.summary": (
        "Прогнозов вне обучающей выборки: {n} · фолдов: {folds} · блок бутстрэпа: {block} свечей · заняло {seconds} с",
        "Out-of-sample predictions: {n} · folds: {folds} · bootstrap block: {block} candles · took {seconds} s",
    ),
    "leaderboard.verdict_recorded": ("Вывод, как он записан в MLflow", "The verdict as recorded in MLflow"),
    "leaderboard.verdict.all": (
        "Лучшая модель — {model}: {metric} {value}. Она значимо лучше всех базовых стратегий.",
        "The best model is {model}: {metric} {value}. It is significantly better than every baseline.",
    ),
    "leaderboard.verdict.some": (
        "Лучшая модель — {model}: {metric} {value}. Значимо лучше базовых стратегий: {beaten}. Без значимого "
        "перевеса над: {others} — там разница может быть случайной.",
        "The best model is {model}: {metric} {value}. Significantly better than the baselines: {beaten}. No "
        "significant edge over: {others} — there the difference may be chance.",
    ),
    "leaderboard.verdict.none": (
        "Лучшая модель — {model}: {metric} {value}, но ни одну базовую стратегию она значимо не превосходит: "
        "преимущество может быть случайным.",
        "The best model is {model}: {metric} {value}, but it is not significantly better than any baseline: "
        "the edge may be chance.",
    ),
    "leaderboard.verdict.few_trades": (
        "Сделок слишком мало ({n} < {min}): доходности и коэффициенту Шарпа доверять нельзя.",
        "Too few trades ({n} < {min}): the return and the Sharpe ratio cannot be trusted.",
    ),
    "leaderboard.verdict.empty": ("В сравнении нет ни одной обученной модели.", "The comparison has no trained model."),
    "leaderboard.table": ("Таблица моделей", "Models"),
    "leaderboard.interval_help": (
        "Каждая метрика — «значение [нижняя, верхняя граница]»: {level}-процентный доверительный интервал блочного "
        "бутстрэпа. Прогнозы много раз перевыбираются блоками подряд идущих свечей (соседние свечи связаны), и "
        "метрика пересчитывается; в интервал попадает {level} % результатов. Широкий интервал — результат неустойчив; "
        "если интервалы двух моделей сильно перекрываются, по этой метрике их не различить.",
        'Each metric is "value [lower, upper bound]": a {level} % block-bootstrap confidence interval. The predictions '
        "are resampled many times in blocks of consecutive candles (neighbouring candles are related) and the "
        "metric is recomputed; {level} % of the results fall inside the interval. A wide interval means an unstable "
        "result; when two models' intervals overlap a lot, this metric cannot tell them apart.",
    ),
    "leaderboard.table_legend": (
        "Серым — базовые стратегии. Доходность и просадка — в процентах за весь период проверки; время обучения — "
        "в секундах, задержка — медиана одного прогноза в миллисекундах.",
        "Grey: the baselines. Return and drawdown in percent over the whole test period; training time in "
        "seconds, latency the median of one prediction in milliseconds.",
    ),
    "leaderboard.kind.family": ("модель", "model"),
    "leaderboard.kind.baseline": ("базовая стратегия", "baseline"),
    "leaderboard.col.model": ("Модель", "Model"),
    "leaderboard.col.kind": ("Тип", "Type"),
    "leaderboard.col.trades": ("Сделок", "Trades"),
    "leaderboard.col.train_seconds": ("Обучение, с", "Training, s"),
    "leaderboard.col.latency": ("Задержка p50, мс", "Latency p50, ms"),
    "leaderboard.col.parameters": ("Параметров", "Parameters"),
    "leaderboard.col.baseline": ("Против стратегии", "Against"),
    "leaderboard.col.metric": ("Метрика", "Metric"),
    "leaderboard.col.diff": ("Разница [интервал]", "Difference [interval]"),
    "leaderboard.col.p_value": ("p-значение", "p-value"),
    "leaderboard.col.conclusion": ("Вывод", "Conclusion"),
    "leaderboard.metric.accuracy": ("Точность", "Accuracy"),
    "leaderboard.metric.f1_macro": ("F1 (макро)", "Macro F1"),
    "leaderboard.metric.log_loss": ("Лог. потери", "Log loss"),
    "leaderboard.metric.brier": ("Оценка Брайера", "Brier score"),
    "leaderboard.metric.sharpe": ("Коэф. Шарпа", "Sharpe ratio"),
    "leaderboard.metric.total_return": ("Доходность", "Total return"),
    "leaderboard.metric.max_drawdown": ("Макс. просадка", "Max drawdown"),
    "leaderboard.metric.ece": ("Ошибка калибровки (ECE)", "Calibration error (ECE)"),
    "leaderboard.metric.mean_net_return": ("Чистый доход за свечу, б.п.", "Net return per bar, bp"),
    "leaderboard.baseline.majority": ("самый частый класс", "the majority class"),
    "leaderboard.baseline.previous_direction": ("повтор прошлого движения", "the previous direction"),
    "leaderboard.too_few_trades": ("слишком мало сделок ({n} < {min})", "too few trades ({n} < {min})"),
    "leaderboard.tests": ("Парные тесты против базовых стратегий", "Paired tests against the baselines"),
    "leaderboard.p_value_help": (
        "Модель и базовая стратегия сравниваются на одних и тех же перевыбранных прогнозах. «Разница» — метрика "
        "модели минус метрика стратегии, в скобках её {level}-процентный интервал. p-значение — вероятность увидеть "
        "такую же или большую разницу, если на самом деле модели равны: чем оно меньше, тем меньше похоже на "
        "случайность. Значимо — p < {alpha}.",
        'The model and the baseline are compared on the same resampled predictions. "Difference" is the model\'s '
        "metric minus the baseline's, with its {level} % interval in brackets. The p-value is the chance of a "
        "difference at least this large if the two were really equal: the smaller, the less it looks like "
        "chance. Significant means p < {alpha}.",
    ),
    "leaderboard.tests_legend": (
        "▲ значимо лучше · ▼ значимо хуже · ≈ разница незначима (может быть случайной).",
        "▲ significantly better · ▼ significantly worse · ≈ no significant difference (may be chance).",
    ),
    "leaderboard.mark.better": ("▲ значимо лучше", "▲ significantly better"),
    "leaderboard.mark.worse": ("▼ значимо хуже", "▼ significantly worse"),
    "leaderboard.mark.same": ("≈ незначимо", "≈ not significant"),
    "leaderboard.no_tests": ("Парных тестов в результате нет.", "The result has no paired tests."),
    "leaderboard.chart_title": (
        "{metric}: модели с интервалами, базовые стратегии — пунктиром",
        "{metric}: models with intervals, baselines dashed",
    ),
    "leaderboard.chart_caption": (
        "Точка — значение метрики, усы — доверительный интервал; пунктир — базовые стратегии. Модель, чей "
        "интервал целиком выше линии стратегии, обыгрывает её не случайно.",
        "A dot is the metric's value, the whiskers its confidence interval; dashed lines are the baselines. A "
        "model whose interval lies wholly above a baseline's line beats it beyond chance.",
    ),
    "leaderboard.policy": ("**Правило сигналов:** {policy}", "**Signal policy:** {policy}"),
    "leaderboard.policy.argmax": ("по самому вероятному классу", "the most likely class"),
    "leaderboard.policy.threshold": (
        "сделка, только если вероятность роста или падения не ниже {threshold}",
        "trade only when P(up) or P(down) is at least {threshold}",
    ),
    "leaderboard.policy.long_short": ("лонг и шорт", "long and short"),
    "leaderboard.policy.long_only": ("только лонг", "long only"),
    "leaderboard.policy.costs": (
        "комиссия {fee} % + проскальзывание {slippage} % за сделку",
        "fee {fee} % + slippage {slippage} % per trade",
    ),
    "leaderboard.open_run": ("Открыть запуск сравнения {run}", "Open the comparison run {run}"),
    "leaderboard.mlflow_link": (
        "[Открыть запуск в интерфейсе MLflow]({url})",
        "[Open the run in the MLflow UI]({url})",
    ),
    "leaderboard.start": ("Новое сравнение", "New comparison"),
    "leaderboard.field.families": ("Семейства моделей", "Model families"),
    "leaderboard.families_help": (
        "Какие модели сравнить; базовые стратегии (самый частый класс, повтор прошлого движения) входят всегда.",
        "Which models to compare; the baselines (the most frequent class, repeat the last move) are always in.",
    ),
    "leaderboard.field.folds": ("Фолдов walk-forward", "Walk-forward folds"),
    "leaderboard.folds_help": (
        "Сколько раз модель обучается на прошлом и проверяется на следующем отрезке; прогнозы всех фолдов "
        "складываются в одну проверку.",
        "How many times a model is trained on the past and tested on the next stretch; the predictions of "
        "every fold make up one test.",
    ),
    "leaderboard.field.epochs": ("Эпох нейросетей", "Network epochs"),
    "leaderboard.field.data_source": ("Источник свечей", "Candle source"),
    "leaderboard.field.date_range": ("Последние N дней данных", "Last N days of data"),
    "leaderboard.field.symbols": ("Пары через запятую", "Pairs, comma-separated"),
    "leaderboard.field.n_boot": ("Повторов бутстрэпа", "Bootstrap resamples"),
    "leaderboard.n_boot_help": (
        "Больше повторов — точнее интервалы и p-значения, но дольше расчёт.",
        "More resamples give more precise intervals and p-values, and take longer.",
    ),
    "leaderboard.field.policy": ("Правило сигналов", "Signal policy"),
    "leaderboard.field.window": ("Окно, свечей", "Window, candles"),
    "leaderboard.field.horizon": ("Горизонт метки, свечей", "Label horizon, candles"),
    "leaderboard.field.timeframe": ("Таймфрейм", "Timeframe"),
    "leaderboard.field.batch_size": ("Размер батча", "Batch size"),
    "leaderboard.field.seed": ("Зерно случайности", "Random seed"),
    "leaderboard.field.priority": ("Приоритет", "Priority"),
    "leaderboard.policy_heading": (
        "**Правило сигналов** — как вероятности превращаются в сделки в бэктесте:",
        "**Signal policy** — how probabilities become trades in the backtest:",
    ),
    "policy.field.mode": ("Правило входа", "Entry rule"),
    "policy.mode.argmax": ("самый вероятный класс", "most likely class"),
    "policy.mode.threshold": ("порог вероятности", "probability threshold"),
    "policy.mode_help": (
        "«Самый вероятный класс»: рост — лонг, падение — шорт, боковик — вне рынка. «Порог»: входить, только "
        "если вероятность роста или падения не ниже порога.",
        '"Most likely class": up goes long, down goes short, flat stays out. "Threshold": trade only when '
        "the probability of up or down is at least the threshold.",
    ),
    "policy.field.threshold": ("Порог вероятности", "Probability threshold"),
    "policy.field.direction": ("Направление", "Direction"),
    "policy.field.fee": ("Комиссия, %", "Fee, %"),
    "policy.field.slippage": ("Проскальзывание, %", "Slippage, %"),
    "leaderboard.submit": ("Запустить сравнение", "Start the comparison"),
    "leaderboard.invalid": ("Поля заполнены неверно — задача не создана:", "Invalid fields — no job was created:"),
    "leaderboard.pick_family": ("выберите хотя бы одно семейство моделей", "choose at least one model family"),
    "leaderboard.queued": ("Задача {id} поставлена в очередь.", "Job {id} is queued."),
    "leaderboard.progress": ("Ход сравнения", "Progress"),
    "leaderboard.no_job": (
        "Задача не выбрана: запустите сравнение или выберите задачу ниже.",
        "No job chosen: start a comparison or pick a job below.",
    ),
    "leaderboard.job_progress": ("Выполнено {pct} %", "{pct} % done"),
    "leaderboard.stage": ("Текущий шаг (как его записывает движок):", "Current step (as the engine writes it):"),
    "leaderboard.cancel_requested": (
        "Отмена запрошена: сравнение остановится после текущего шага.",
        "Cancellation requested: the comparison stops after the current step.",
    ),
    "leaderboard.finished": (
        "Сравнение завершено — таблица выше обновлена.",
        "The comparison has finished — the table above is updated.",
    ),
    "leaderboard.recent": ("Недавние сравнения", "Recent comparisons"),
    "leaderboard.no_jobs": ("Задач сравнения ещё не было.", "No comparison jobs yet."),
    # -- hyperparameter search (Optuna studies) -------------------------------------------------
    "nav.tuning": ("Подбор гиперпараметров", "Hyperparameter search"),
    "job.kind.tune": ("подбор гиперпараметров", "hyperparameter search"),
    "job.kind.monitor": ("мониторинг прогнозов", "prediction monitoring"),
    "tuning.title": ("Подбор гиперпараметров", "Hyperparameter search"),
    "tuning.caption": (
        "Поиски (studies) Optuna: каждый trial — одно обучение с набором гиперпараметров на walk-forward фолдах; "
        "trials идут задачами на исполнителях, по несколько сразу. Когда trials кончаются, лучший trial один раз "
        "проверяется на отложенной выборке (holdout) и считаются DSR и PBO — насколько победе можно верить.",
        "Optuna studies: each trial is one training with a set of hyperparameters on walk-forward folds; trials "
        "run as jobs on the workers, several at once. When the trials are done, the best trial is checked once on "
        "the held-out data and DSR and PBO are computed — how far the win can be trusted.",
    ),
    "tuning.none": (
        "Поисков гиперпараметров ещё нет. Поиск (study) — это серия trials: Optuna перебирает гиперпараметры "
        "выбранных семейств моделей, каждый набор обучается и оценивается на одних и тех же walk-forward фолдах, "
        "а итог — лучший набор, его проверка на отложенной выборке и оценки DSR и PBO.",
        "No hyperparameter search yet. A study is a series of trials: Optuna tries hyperparameters of the chosen "
        "model families, each set is trained and scored on the same walk-forward folds, and the outcome is the best "
        "set, its check on the held-out data and the DSR and PBO estimates.",
    ),
    "tuning.none_cli": (
        "Запустите первый поиск формой ниже или из командной строки (20 trials, по 2 сразу на исполнителях):",
        "Start the first one with the form below or from the command line (20 trials, 2 at once on the workers):",
    ),
    "tuning.studies": ("Поиски", "Studies"),
    "tuning.pick": ("Поиск", "Study"),
    "tuning.pick_label": ("{name} · {family} · trials: {n} шт.", "{name} · {family} · {n} trials"),
    "tuning.col.study": ("Поиск", "Study"),
    "tuning.col.family": ("Семейство", "Family"),
    "tuning.col.objective": ("Цель", "Objective"),
    "tuning.col.trials": ("Trials по состояниям", "Trials by state"),
    "tuning.col.target": ("Всего trials по плану", "Target trials"),
    "tuning.col.jobs": ("Задач в очереди / выполняется", "Jobs queued / running"),
    "tuning.col.best": ("Лучшее значение", "Best value"),
    "tuning.col.finalized": ("Итоги подведены", "Finalized"),
    "tuning.col.created": ("Создан", "Created"),
    "tuning.col.number": ("Номер", "Number"),
    "tuning.col.state": ("Состояние", "State"),
    "tuning.col.value": ("Значение", "Value"),
    "tuning.col.params": ("Гиперпараметры", "Hyperparameters"),
    "tuning.col.param": ("Гиперпараметр", "Hyperparameter"),
    "tuning.col.sharpe": ("Шарп за свечу", "Sharpe per bar"),
    "tuning.col.seconds": ("Секунд", "Seconds"),
    "tuning.col.host": ("Хост", "Host"),
    "tuning.col.retry_of": ("Повтор trial", "Retry of"),
    "tuning.col.error": ("Ошибка или причина", "Error or reason"),
    "tuning.col.metric": ("Метрика", "Metric"),
    "tuning.intermediate": ("{value} (промежуточное)", "{value} (intermediate)"),
    "tuning.col.action": ("Действие", "Action"),
    "tuning.state.COMPLETE": ("завершён", "complete"),
    "tuning.state.PRUNED": ("остановлен досрочно (pruning)", "stopped early (pruned)"),
    "tuning.state.FAIL": ("ошибка", "failed"),
    "tuning.state.RUNNING": ("идёт", "running"),
    "tuning.state.WAITING": ("ждёт (повтор)", "waiting (retry)"),
    "tuning.objective.accuracy": ("точность", "accuracy"),
    "tuning.objective.f1_macro": ("F1 (макро)", "macro F1"),
    "tuning.objective.log_loss": ("лог. потери", "log loss"),
    "tuning.objective.net_return": ("чистая доходность", "net return"),
    "tuning.objective.n_trades": ("сделок", "trades"),
    "tuning.objective.windows": ("окон", "windows"),
    "tuning.direction.maximize": ("больше — лучше", "higher is better"),
    "tuning.direction.minimize": ("меньше — лучше", "lower is better"),
    "tuning.study": ("Поиск {name}", "Study {name}"),
    "tuning.study_caption": (
        "Семейство: {family} · цель: {objective} ({direction}) · trials по плану: {target} · одновременно: "
        "{parallel} · фолдов: {folds}",
        "Family: {family} · objective: {objective} ({direction}) · target trials: {target} · at once: {parallel} "
        "· folds: {folds}",
    ),
    "tuning.best_value": ("Лучшее на валидации: {objective}", "Best on validation: {objective}"),
    "tuning.best_value_help": (
        "Среднее значение цели лучшего trial на walk-forward фолдах — по нему Optuna выбирает. Это значение "
        "оптимистично: из многих попыток выбрана самая удачная.",
        "The best trial's objective averaged over the walk-forward folds — what Optuna selects by. It is "
        "optimistic: the luckiest of many tries was picked.",
    ),
    "tuning.best_trial": ("лучший trial — №{n}", "best trial: #{n}"),
    "tuning.holdout_value": ("На отложенной выборке: {objective}", "On the held-out data: {objective}"),
    "tuning.holdout_help": (
        "Последний отрезок данных, который ни один trial не видел. Он читается один раз, для лучшего trial на момент "
        "подведения итогов, и больше не перечитывается — иначе и он стал бы частью подбора.",
        "The last stretch of data no trial has seen. It is read once, for the best trial when the study is "
        "finalized, and never re-read — otherwise it too would become part of the search.",
    ),
    "tuning.no_holdout": (
        "Ещё не прочитана: это делается один раз, когда trials закончатся.",
        "Not read yet: that happens once, when the trials are done.",
    ),
    "tuning.holdout_trial": ("прочитана один раз, для trial №{n}", "read once, for trial #{n}"),
    "tuning.holdout_stale": (
        "Отложенная выборка прочитана для trial №{read}, а лучший теперь №{best}: повторно она не читается, "
        "поэтому для нового лучшего trial честной проверки нет.",
        "The held-out data was read for trial #{read}, and the best is now #{best}: it is not re-read, so the new "
        "best trial has no honest check.",
    ),
    "tuning.holdout_all": ("Все метрики на отложенной выборке", "Every metric on the held-out data"),
    "tuning.holdout_rows": ("строк", "rows"),
    "tuning.holdout_seconds": ("секунд на проверку", "seconds to check"),
    "tuning.best_params": ("Гиперпараметры лучшего trial", "The best trial's hyperparameters"),
    "tuning.trials_done": ("Trials: сделано / по плану", "Trials: done / target"),
    "tuning.trials_help": (
        "Все trials поиска, в том числе остановленные досрочно и с ошибкой; повтор trial, чей исполнитель упал, "
        "не засчитывается дважды.",
        "Every trial of the study, pruned and failed ones included; the retry of a trial whose worker died is "
        "not counted twice.",
    ),
    "tuning.overfitting": ("Можно ли верить победителю: DSR и PBO", "Can the winner be trusted: DSR and PBO"),
    "tuning.dsr": ("DSR (дефлированный Шарп)", "DSR (deflated Sharpe)"),
    "tuning.dsr_explained": (
        "**DSR (дефлированный коэффициент Шарпа)** — вероятность того, что истинный коэффициент Шарпа лучшего trial "
        "выше нуля, с поправкой на то, сколько trials перепробовано и насколько разбросаны их коэффициенты Шарпа "
        "(Bailey и López de Prado, 2014): чем больше попыток, тем выше планка, которую победитель должен превзойти. "
        "Хорошо — близко к 1 (например, не ниже 0.95); низкое значение значит, что преимущество победителя может "
        "быть просто везением среди многих попыток.",
        "**DSR (Deflated Sharpe Ratio)** is the probability that the best trial's true Sharpe ratio is above zero, "
        "after accounting for how many trials were tried and how much their Sharpe ratios varied (Bailey and "
        "López de Prado, 2014): the more tries, the higher the bar the winner has to clear. Good is close to 1 "
        "(e.g. 0.95 or more); a low value means the winner's edge may be the luck of many tries.",
    ),
    "tuning.dsr_detail": (
        "trials учтено: {n} · Шарп лучшего за свечу: {sharpe} · планка SR0 (ожидаемый лучший Шарп при нулевом "
        "истинном): {sr0} · свечей: {obs}",
        "trials counted: {n} · the best one's Sharpe per bar: {sharpe} · the bar SR0 (the best Sharpe expected by "
        "luck alone): {sr0} · bars: {obs}",
    ),
    "tuning.dsr_none": (
        "Ещё не посчитан: нужны завершённые trials и подведённые итоги.",
        "Not computed yet: it needs completed trials and a finalized study.",
    ),
    "tuning.dsr_good": (
        "Не ниже {floor}: преимущество лучшего trial вряд ли объясняется числом попыток.",
        "At least {floor}: the best trial's edge is unlikely to come from the number of tries.",
    ),
    "tuning.dsr_low": (
        "Ниже {floor}: преимущество лучшего trial может быть везением среди многих попыток.",
        "Below {floor}: the best trial's edge may be the luck of many tries.",
    ),
    "tuning.gate_dsr": (
        "Шлюз продвижения требует DSR не ниже {value} (ML_GATE_MIN_DSR).",
        "The promotion gate requires a DSR of at least {value} (ML_GATE_MIN_DSR).",
    ),
    "tuning.gate_dsr_unset": (
        "Шлюз продвижения DSR не проверяет (ML_GATE_MIN_DSR не задан).",
        "The promotion gate does not check the DSR (ML_GATE_MIN_DSR is not set).",
    ),
    "tuning.pbo": ("PBO (переобучение бэктеста)", "PBO (backtest overfitting)"),
    "tuning.pbo_explained": (
        "**PBO (вероятность переобучения бэктеста)** — вероятность того, что конфигурация, лучшая на обучающих "
        "отрезках, окажется ниже медианы на проверочных. Отрезки времени много раз делятся пополам всеми способами, "
        "и каждый раз смотрят, где оказался победитель (комбинаторно-симметричная кросс-валидация, Bailey, "
        "Borwein, López de Prado и Zhu, 2015). Хорошо — около 0; 0.5 и больше значит, что выбор лучшего trial "
        "не лучше подбрасывания монеты.",
        "**PBO (Probability of Backtest Overfitting)** is the probability that the configuration best in-sample "
        "ranks below the median out-of-sample. The time range is split into halves in every way many times over, "
        "and each time the winner's place is checked (combinatorially symmetric cross-validation, Bailey, "
        "Borwein, López de Prado and Zhu, 2015). Good is near 0; 0.5 or more means the selection is no better "
        "than a coin.",
    ),
    "tuning.pbo_detail": (
        "trials: {n} · разбиений: {splits} · свечей: {obs} · вероятность убытка выбранного вне выборки: {loss}",
        "trials: {n} · splits: {splits} · bars: {obs} · probability that the pick loses out-of-sample: {loss}",
    ),
    "tuning.pbo_none": (
        "Ещё не посчитана: нужны хотя бы 2 завершённых trial и подведённые итоги.",
        "Not computed yet: it needs at least 2 completed trials and a finalized study.",
    ),
    "tuning.pbo_good": (
        "Ниже 0.5: выбор лучшего trial лучше подбрасывания монеты.",
        "Below 0.5: picking the best trial beats a coin toss.",
    ),
    "tuning.pbo_coin": (
        "0.5 или больше: выбор лучшего trial не лучше подбрасывания монеты — победитель, скорее всего, подогнан "
        "под историю.",
        "0.5 or more: picking the best trial is no better than a coin toss — the winner is most likely fitted to "
        "the past.",
    ),
    "tuning.pbo_above_gate": (
        "Выше порога шлюза продвижения ({value}): продвинуть эту модель шлюз не даст.",
        "Above the promotion gate's limit ({value}): the gate will not promote this model.",
    ),
    "tuning.gate_pbo": (
        "Шлюз продвижения требует PBO не выше {value} (ML_GATE_MAX_PBO).",
        "The promotion gate requires a PBO of at most {value} (ML_GATE_MAX_PBO).",
    ),
    "tuning.gate_pbo_unset": (
        "Шлюз продвижения PBO не проверяет (ML_GATE_MAX_PBO не задан).",
        "The promotion gate does not check the PBO (ML_GATE_MAX_PBO is not set).",
    ),
    "tuning.not_finalized": (
        "Итоги ещё не подведены для всех trials: DSR, PBO и отложенная выборка пересчитываются, когда закончится "
        "последний trial.",
        "The study is not finalized for every trial yet: DSR, PBO and the held-out check are redone when the last "
        "trial ends.",
    ),
    "tuning.mlflow": ("Запуски MLflow", "MLflow runs"),
    "tuning.no_mlflow": (
        "Поиск шёл без записи в MLflow (--no-mlflow): запусков нет.",
        "The study ran without MLflow tracking (--no-mlflow): there are no runs.",
    ),
    "tuning.parent_run": ("Родительский запуск поиска:", "The study's parent run:"),
    "tuning.best_run": ("Дочерний запуск лучшего trial №{n}:", "The child run of the best trial #{n}:"),
    "tuning.open_run": ("Открыть запуск {run}", "Open run {run}"),
    "tuning.actions": ("Действия", "Actions"),
    "tuning.promote_heading": ("**Продвинуть лучший trial**", "**Promote the best trial**"),
    "tuning.promote_text": (
        "Задача на исполнителе: лучший trial переобучается обычным путём обучения, регистрируется (с тегами поиска, "
        "DSR и PBO) и проходит шлюз продвижения.",
        "A job on a worker: the best trial is retrained through the normal training path, registered (tagged with "
        "the study, DSR and PBO) and put through the promotion gate.",
    ),
    "tuning.promote_button": ("Продвинуть лучший trial", "Promote the best trial"),
    "tuning.nothing_to_promote": ("Завершённых trials ещё нет.", "No completed trial yet."),
    "tuning.promote_queued": (
        "Задача {id} поставлена в очередь: переобучение, регистрация и шлюз продвижения.",
        "Job {id} is queued: retraining, registration and the promotion gate.",
    ),
    "tuning.follow": (
        "Ход задачи — здесь и в таблице задач подбора внизу страницы; в REST API — GET /api/ml-management/jobs/{id}.",
        "Follow the job here and in the table of search jobs at the bottom of the page; in the REST API: GET "
        "/api/ml-management/jobs/{id}.",
    ),
    "tuning.promoted": (
        "Версия {name} v{version} прошла шлюз и продвинута в production.",
        "Version {name} v{version} passed the gate and was promoted to production.",
    ),
    "tuning.refused": (
        "Версия зарегистрирована, но шлюз её не пропустил:",
        "The version was registered, but the gate refused it:",
    ),
    "tuning.registered": ("Зарегистрирована версия {name} v{version}.", "Registered version {name} v{version}."),
    "tuning.stop_heading": ("**Остановить поиск**", "**Stop the study**"),
    "tuning.stop_text": (
        "Новые trials не начинаются, задачи в очереди отменяются, идущие trials останавливаются; итоги подводит "
        "последняя задача.",
        "No new trials start, queued jobs are cancelled, running trials are stopped; the last job finalizes the study.",
    ),
    "tuning.stop_button": ("Остановить", "Stop"),
    "tuning.stopped": (
        "Остановка запрошена: новые trials не начнутся.",
        "Stop requested: no new trials will start.",
    ),
    "tuning.stop_requested": (
        "Поиск остановлен: новые trials не начинаются.",
        "The study is stopped: no new trials start.",
    ),
    "tuning.nothing_to_stop": (
        "Останавливать нечего: все trials по плану уже прошли.",
        "Nothing to stop: every planned trial has run.",
    ),
    "tuning.trials": ("Trials поиска", "The study's trials"),
    "tuning.live": (
        "Trials идут: таблица и графики обновляются каждые {s} с.",
        "Trials are running: the table and the charts refresh every {s} s.",
    ),
    "tuning.progress": (
        "**Trials:** {states} · по плану: {target} · ещё начать: {left}",
        "**Trials:** {states} · target: {target} · still to start: {left}",
    ),
    "tuning.no_trials": ("Ни один trial ещё не начался.", "No trial has started yet."),
    "tuning.trials_legend": (
        "У остановленного досрочно trial значение промежуточное — последнее, что он сообщил перед остановкой "
        "(после эпохи или фолда); лучший выбирается только среди завершённых. «Повтор trial» — trial, заново "
        "запущенный вместо того, чей исполнитель упал.",
        "A pruned trial's value is intermediate — the last one it reported before it was stopped (after an epoch "
        'or a fold); the best is picked among the completed ones only. "Retry of" names the trial re-run in place '
        "of one whose worker died.",
    ),
    "tuning.no_history": (
        "История оптимизации появится после первого завершённого trial.",
        "The optimization history appears after the first completed trial.",
    ),
    "tuning.no_importances": (
        "Важность гиперпараметров появится, когда завершатся хотя бы 2 trials.",
        "The hyperparameter importances appear once at least 2 trials have completed.",
    ),
    "tuning.importances_caption": (
        "Насколько каждый гиперпараметр влияет на цель (fANOVA Optuna); при немногих trials — грубая оценка.",
        "How much each hyperparameter moves the objective (Optuna's fANOVA); with few trials, a rough estimate.",
    ),
    "tuning.chart.history": ("История оптимизации", "Optimization history"),
    "tuning.chart.importances": ("Важность гиперпараметров", "Hyperparameter importances"),
    "tuning.chart.trial": ("Номер trial", "Trial number"),
    "tuning.chart.importance": ("Важность", "Importance"),
    "tuning.chart.param": ("Гиперпараметр", "Hyperparameter"),
    "tuning.chart.objective_value": ("Значение цели", "Objective value"),
    "tuning.chart.best_value": ("Лучшее на данный момент", "Best so far"),
    "tuning.chart.infeasible": ("Недопустимый trial", "Infeasible trial"),
    "tuning.start": ("Новый поиск", "New search"),
    "tuning.cli": (
        "Поиск ставит trials задачами в очередь исполнителей. То же из командной строки:",
        "A search queues its trials as jobs for the workers. The same from the command line:",
    ),
    "tuning.field.family": ("Семейство моделей", "Model family"),
    "tuning.all_families": ("все семейства", "every family"),
    "tuning.field.trials": ("Число trials", "Number of trials"),
    "tuning.field.parallel": ("Одновременно trials", "Trials at once"),
    "tuning.parallel_help": (
        "Сколько задач-trials держать в работе сразу; каждая занимает место на исполнителе.",
        "How many trial jobs to keep in flight at once; each takes a slot on a worker.",
    ),
    "tuning.field.objective": ("Цель", "Objective"),
    "tuning.field.data_source": ("Источник свечей", "Candle source"),
    "tuning.field.date_range": ("Последние N дней данных", "Last N days of data"),
    "tuning.field.study": ("Имя поиска", "Study name"),
    "tuning.study_auto": ("автоматически: семейство-данные-цель", "automatic: family-data-objective"),
    "tuning.submit": ("Начать поиск", "Start the search"),
    "tuning.invalid": ("Поля заполнены неверно — поиск не создан:", "Invalid fields — no study was created:"),
    "tuning.submitted": (
        "Поиск {name} создан: trials по плану — {target}, задач в очереди — {jobs}. Он выбран в списке выше.",
        "Study {name} created: {target} trials planned, {jobs} jobs queued. It is selected in the list above.",
    ),
    "tuning.recent": ("Задачи подбора", "Search jobs"),
    "tuning.no_jobs": ("Задач подбора ещё не было.", "No search jobs yet."),
    "tuning.recent_caption": (
        "Каждый trial — отдельная задача; задача продвижения переобучает и регистрирует лучший trial.",
        "Each trial is a job of its own; a promotion job retrains and registers the best trial.",
    ),
    "tuning.action.trial": ("один trial", "one trial"),
    "tuning.action.register": ("продвижение лучшего", "promote the best"),
    # -- monitoring --------------------------------------------------------------------------
    "nav.monitoring": ("Мониторинг", "Monitoring"),
    "monitoring.title": ("Мониторинг", "Monitoring"),
    "monitoring.caption": (
        "Как работают обслуживаемые версии на живых прогнозах: исходы записанных прогнозов по дням (UTC) рядом "
        "с тем, что версия показала на тесте.",
        "How the served versions do on live predictions: the outcomes of recorded predictions per day (UTC) beside "
        "what the version scored on its test set.",
    ),
    "monitoring.unavailable": (
        "Журнал прогнозов не прочитан: база данных недоступна. Сообщение:",
        "The prediction log could not be read: the database is not available. The error says:",
    ),
    "monitoring.none": ("Записанных прогнозов пока нет.", "No recorded predictions yet."),
    "monitoring.none_what": (
        "Когда они появятся, здесь будет видно по каждой версии модели и по дням: точность и макро-F1 рядом с "
        "тестовыми значениями, PnL сигналов после комиссий (за день и накопленный), доля прибыльных сделок, "
        "покрытие свечей, ошибка калибровки (ECE) и задержка ответа p50/p95/p99, а ещё — сколько прогнозов ждут "
        "исхода, сколько просрочено и на какой свече сделан последний.",
        "Once there are some, this page shows per model version and per day: accuracy and macro F1 beside their "
        "test-time values, signal PnL after fees (per day and cumulative), hit rate, candle coverage, calibration "
        "error (ECE) and response latency p50/p95/p99, plus how many predictions wait for their outcome, how "
        "many expired and which candle the newest one was made on.",
    ),
    "monitoring.none_recording": (
        "Запись включена по умолчанию (`ML_PREDICTION_LOG=1`): записываются прогнозы `POST /predict` REST API, "
        "обслуживаемой pyfunc-модели (`mlflow models serve`) и класса `Predictor`. Они попадают в таблицу "
        "`ml_predictions` базы задач (`ML_JOBS_DATABASE_URL`) или базы `ML_PREDICTION_LOG_URL`, если она задана.",
        "Recording is on by default (`ML_PREDICTION_LOG=1`): predictions of the REST API's `POST /predict`, of "
        "the served pyfunc model (`mlflow models serve`) and of the `Predictor` class are recorded. They go to "
        "the table `ml_predictions` of the jobs database (`ML_JOBS_DATABASE_URL`), or of `ML_PREDICTION_LOG_URL` "
        "when that is set.",
    ),
    "monitoring.recording_off": (
        "В настройках этой панели запись прогнозов выключена (`ML_PREDICTION_LOG=0`): если так же настроены API "
        "и модели, новых прогнозов здесь не появится.",
        "Recording is off in this dashboard's settings (`ML_PREDICTION_LOG=0`): if the API and the models are "
        "set the same way, no new predictions will appear here.",
    ),
    "monitoring.none_job": (
        "Исходы и метрики считает задача мониторинга: планировщик ставит её каждые {minutes} минут; чтобы "
        "посчитать сейчас, нажмите «Пересчитать сейчас» внизу страницы.",
        "Outcomes and metrics are computed by the monitoring job: the scheduler queues it every {minutes} minutes; "
        'to compute them now, press "Recompute now" at the bottom of the page.',
    ),
    "monitoring.model": ("Модель", "Model"),
    "monitoring.version": ("Версия", "Version"),
    "monitoring.version_help": (
        "Все версии, чьи прогнозы есть в журнале, в том числе удалённые из реестра: их история хранится в журнале.",
        "Every version with predictions in the log, those deleted from the registry included: their history "
        "lives in the log.",
    ),
    "monitoring.version_production": ("v{version} · production (в работе)", "v{version} · production (serving)"),
    "monitoring.version_deleted": ("v{version} · нет в реестре", "v{version} · not in the registry"),
    "monitoring.version_heading": ("{name}, версия {version}", "{name}, version {version}"),
    "monitoring.is_production": (
        "Эта версия сейчас в production.",
        "This version is in production now.",
    ),
    "monitoring.deleted_caption": (
        "Этой версии нет в реестре моделей (удалена или не регистрировалась); её прогнозы и метрики хранятся в "
        "журнале прогнозов.",
        "This version is not in the model registry (deleted, or never registered); its predictions and metrics "
        "are kept in the prediction log.",
    ),
    "monitoring.no_days": (
        "По этой версии метрики ещё не подсчитаны: задача мониторинга после записи прогнозов ещё не запускалась.",
        "No metrics for this version yet: the monitoring job has not run since its predictions were recorded.",
    ),
    "monitoring.newest_day": ("Последний день: {day}", "Newest day: {day}"),
    "monitoring.newest_day_caption": (
        "Прогнозов: {predictions} · с известным исходом: {resolved} · пересчитано: {updated}",
        "Predictions: {predictions} · with a known outcome: {resolved} · recomputed: {updated}",
    ),
    "monitoring.tile.accuracy": ("Точность", "Accuracy"),
    "monitoring.tile.accuracy_help": (
        "Доля прогнозов дня с известным исходом, у которых класс совпал с фактической меткой.",
        "The share of the day's predictions with a known outcome whose class matched the realised label.",
    ),
    "monitoring.tile.f1": ("Макро-F1", "Macro F1"),
    "monitoring.tile.f1_help": (
        "Среднее F1 по трём классам (вниз, флэт, вверх) на прогнозах дня с известным исходом.",
        "The mean F1 over the three classes (down, flat, up) on the day's predictions with a known outcome.",
    ),
    "monitoring.test_value": ("на тесте: {value}", "on the test set: {value}"),
    "monitoring.pp": ("{pp} п.п.", "{pp} pp"),
    "monitoring.verdict.below": (
        "ниже тестовой на {pp} п.п. (на тесте {test})",
        "below the test value by {pp} pp (test: {test})",
    ),
    "monitoring.verdict.above": (
        "выше тестовой на {pp} п.п. (на тесте {test})",
        "above the test value by {pp} pp (test: {test})",
    ),
    "monitoring.verdict.level": ("на уровне теста ({test})", "at the test's level ({test})"),
    "monitoring.verdict.no_test": (
        "тестовое значение у версии не записано",
        "the version has no recorded test value",
    ),
    "monitoring.verdict.no_live": (
        "исходов за этот день ещё нет",
        "no outcomes for this day yet",
    ),
    "monitoring.tile.pnl": ("PnL сигналов", "Signal PnL"),
    "monitoring.tile.pnl_help": (
        "Сумма доходностей сделок дня: каждая покупка или продажа — отдельная сделка на горизонт модели, "
        "за вычетом комиссии и проскальзывания туда и обратно.",
        "The sum of the day's trade returns: each buy or sell is a trade of its own over the model's horizon, "
        "minus the round-trip fee and slippage.",
    ),
    "monitoring.after_fees": ("после комиссий", "after fees"),
    "monitoring.tile.hit_rate": ("Доля прибыльных сделок", "Hit rate"),
    "monitoring.tile.hit_rate_help": (
        "Доля сделок (buy и sell с известным исходом) с положительной доходностью после комиссий.",
        "The share of trades (buy and sell with a known outcome) with a positive return after fees.",
    ),
    "monitoring.trades": ("сделок: {n}", "trades: {n}"),
    "monitoring.tile.coverage": ("Покрытие свечей", "Candle coverage"),
    "monitoring.tile.coverage_help": (
        "Сколько свечей дня получили прогноз: разные свечи с прогнозом / свечи в источнике за день по тем же символам.",
        "How many of the day's candles got a prediction: distinct predicted candles / candles in the source that "
        "day for the same symbols.",
    ),
    "monitoring.tile.pending": ("Ждут исхода", "Pending"),
    "monitoring.tile.pending_help": (
        "Прогнозы версии, чей горизонт ещё не прошёл или чьей свечи выхода ещё нет в источнике.",
        "The version's predictions whose horizon has not passed yet or whose exit candle the source lacks so far.",
    ),
    "monitoring.tile.expired": ("Просрочены", "Expired"),
    "monitoring.tile.expired_help": (
        "Прогнозы, чьей свечи выхода нет в источнике и через ML_OUTCOME_EXPIRY_HOURS после её времени: "
        "учитываются, но не оцениваются.",
        "Predictions whose exit candle the source still lacks ML_OUTCOME_EXPIRY_HOURS after its time: counted, "
        "never scored.",
    ),
    "monitoring.tile.last_candle": ("Свеча последнего прогноза, UTC", "Newest prediction's candle, UTC"),
    "monitoring.tile.last_candle_help": (
        "Время открытия последней свечи окна у самого нового записанного прогноза версии.",
        "The open time of the window's last candle of the version's newest recorded prediction.",
    ),
    "monitoring.charts": ("По дням", "Per day"),
    "monitoring.charts_caption": (
        "Дни — по времени свечи прогноза (UTC). Пунктир — значение версии на тесте при обучении.",
        "Days by the prediction's candle time (UTC). Dashed: the version's value on its test set at training.",
    ),
    "monitoring.chart.quality": ("Точность и макро-F1 против теста", "Accuracy and macro F1 against the test"),
    "monitoring.series.accuracy": ("Точность", "Accuracy"),
    "monitoring.series.f1": ("Макро-F1", "Macro F1"),
    "monitoring.series.test_accuracy": ("Точность на тесте", "Test accuracy"),
    "monitoring.series.test_f1": ("Макро-F1 на тесте", "Test macro F1"),
    "monitoring.axis.share": ("Доля", "Share"),
    "monitoring.chart.pnl": ("PnL сигналов после комиссий", "Signal PnL after fees"),
    "monitoring.axis.return": ("Доходность", "Return"),
    "monitoring.series.pnl_day": ("За день", "Per day"),
    "monitoring.series.pnl_total": ("Накопленный", "Cumulative"),
    "monitoring.chart.rates": ("Доля прибыльных сделок и покрытие", "Hit rate and coverage"),
    "monitoring.series.hit_rate": ("Доля прибыльных сделок", "Hit rate"),
    "monitoring.series.coverage": ("Покрытие свечей", "Candle coverage"),
    "monitoring.chart.ece": ("Ошибка калибровки (ECE)", "Calibration error (ECE)"),
    "monitoring.series.ece": ("Ошибка калибровки", "Calibration error"),
    "monitoring.axis.ece": ("ECE, меньше — лучше", "ECE, lower is better"),
    "monitoring.chart.latency": ("Задержка ответа", "Response latency"),
    "monitoring.axis.ms": ("мс", "ms"),
    "monitoring.ece_caption": (
        "ECE — насколько уверенность модели расходится с тем, как часто она права: 0 — уверенность честная.",
        "ECE is how far the model's confidence is from how often it is right: 0 means honest confidence.",
    ),
    "monitoring.pnl_caption": (
        "PnL — простая сумма доходностей сделок (без реинвестирования); сделки по соседним свечам перекрываются.",
        "PnL is the plain sum of trade returns (no compounding); trades on neighbouring candles overlap.",
    ),
    "monitoring.days_table": ("Таблица по дням", "Table per day"),
    "monitoring.col.day": ("День", "Day"),
    "monitoring.col.predictions": ("Прогнозов", "Predictions"),
    "monitoring.col.resolved": ("С исходом", "Resolved"),
    "monitoring.col.expired": ("Просрочено", "Expired"),
    "monitoring.col.trades": ("Сделок", "Trades"),
    "monitoring.col.accuracy": ("Точность", "Accuracy"),
    "monitoring.col.f1": ("Макро-F1", "Macro F1"),
    "monitoring.col.ece": ("Ошибка калибровки", "Calibration error"),
    "monitoring.col.pnl": ("PnL после комиссий", "PnL after fees"),
    "monitoring.col.hit_rate": ("Доля прибыльных", "Hit rate"),
    "monitoring.col.coverage": ("Покрытие", "Coverage"),
    "monitoring.col.p50": ("Задержка p50, мс", "Latency p50, ms"),
    "monitoring.col.p95": ("Задержка p95, мс", "Latency p95, ms"),
    "monitoring.col.p99": ("Задержка p99, мс", "Latency p99, ms"),
    "monitoring.col.updated": ("Пересчитано", "Recomputed"),
    "monitoring.how": ("Как считаются исходы", "How outcomes are computed"),
    "monitoring.how_outcomes": (
        "Каждый прогноз привязан к свече, на которой закончилось его окно (ко времени свечи, а не к часам "
        "сервера), поэтому бот с неточными часами сопоставляется верно. Когда проходит горизонт модели, "
        "фактическая метка считается так же, как при обучении: направление доходности от этой свечи до свечи "
        "через горизонт относительно «плоской» полосы версии. Доходность сигнала — сделка, открытая по цене "
        "открытия следующей свечи и закрытая через горизонт, за вычетом комиссии и проскальзывания туда и "
        "обратно (buy — покупка, sell — продажа, hold — без сделки). Пока свечи выхода нет в источнике, прогноз "
        "ждёт исхода; если её нет и через ML_OUTCOME_EXPIRY_HOURS (по умолчанию 48 ч), прогноз просрочен: он "
        "учитывается, но не оценивается. Задача мониторинга запускается планировщиком каждые {minutes} минут и "
        "пересчитывает метрики по версиям и дням UTC.",
        "Each prediction is tied to the candle its window ended on (the candle's time, not the server's clock), "
        "so a bot whose clock is off is still joined correctly. Once the model's horizon has passed, the realised "
        "label is computed as in training: the direction of the return from that candle to the candle one "
        "horizon later, against the version's flat band. The signal's return is a trade entered at the next "
        "candle's open and closed one horizon later, minus the round-trip fee and slippage (buy goes long, sell "
        "goes short, hold makes no trade). While the source lacks the exit candle the prediction is pending; "
        "if it is still missing ML_OUTCOME_EXPIRY_HOURS later (48 h by default), the prediction expires: counted, "
        "never scored. The scheduler runs the monitoring job every {minutes} minutes; it recomputes the metrics "
        "per version and UTC day.",
    ),
    "monitoring.how_drop": (
        "**Триггер переобучения performance_drop** теперь сначала смотрит на живые исходы: если у версии в "
        "production за последние {days} дн. (по времени свечи) не меньше {samples} прогнозов с известным исходом, "
        "их точность и макро-F1 сравниваются с тестовыми, и переобучение начинается, когда любая из них ниже "
        "тестовой больше чем на {margin} п.п. Если таких исходов меньше или запись выключена, версия, как и "
        "раньше, заново оценивается на последних свечах.",
        "**The performance_drop retraining trigger** now looks at live outcomes first: when the production "
        "version has at least {samples} predictions with a known outcome over the last {days} days (by candle "
        "time), their accuracy and macro F1 are compared with the test-time values, and a retraining starts when "
        "either is below its test value by more than {margin} pp. With fewer outcomes, or recording off, the "
        "version is re-scored on the recent candles as before.",
    ),
    "monitoring.recompute": ("Пересчитать исходы", "Recompute the outcomes"),
    "monitoring.recompute_text": (
        "Задача мониторинга на исполнителе: находит исходы прогнозов, чей горизонт прошёл, и пересчитывает "
        "метрики по дням. Планировщик и так ставит её каждые {minutes} минут.",
        "The monitoring job on a worker: finds the outcomes of predictions whose horizon has passed and "
        "recomputes the metrics per day. The scheduler queues it every {minutes} minutes anyway.",
    ),
    "monitoring.recompute_button": ("Пересчитать сейчас", "Recompute now"),
    "monitoring.queued": (
        "Задача {id} поставлена в очередь: исходы и метрики по дням.",
        "Job {id} is queued: outcomes and the metrics per day.",
    ),
    "monitoring.follow": (
        "Ход задачи — здесь; в REST API — GET /api/ml-management/jobs/{id}.",
        "Follow the job here; in the REST API: GET /api/ml-management/jobs/{id}.",
    ),
    "monitoring.job_done": (
        "Готово: исходов найдено — {resolved}, просрочено — {expired}, ещё ждут — {pending}; дней пересчитано — "
        "{days}.",
        "Done: {resolved} outcomes found, {expired} expired, {pending} still pending; {days} days recomputed.",
    ),
    "monitoring.cli": (
        "То же без очереди задач, из командной строки (та же функция, что выполняет задача):",
        "The same without the job queue, from the command line (the function the job runs):",
    ),
}

TEXTS: dict[str, dict[str, str]] = {
    lang: {key: pair[i] for key, pair in _TABLE.items()} for i, lang in enumerate(LANGUAGES)
}

_CYRILLIC = re.compile(r"[А-Яа-яЁё]")


class _Keep(dict):
    """Format mapping that leaves unknown ``{fields}`` as they are."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def current_language() -> str:
    """The language chosen in the sidebar (Russian until someone switches)."""
    try:
        import streamlit as st
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        # Outside a script run (unit tests; AppTest formatting options in its own thread) there is no session.
        if get_script_run_ctx(suppress_warning=True) is None:
            return DEFAULT_LANGUAGE
        lang = st.session_state.get(LANG_KEY, DEFAULT_LANGUAGE)
    except Exception:  # noqa: BLE001 - no Streamlit runtime at all
        lang = DEFAULT_LANGUAGE
    return lang if lang in TEXTS else DEFAULT_LANGUAGE


def ensure_language() -> str:
    """Put the default language into the session before the switch is drawn."""
    import streamlit as st

    if st.session_state.get(LANG_KEY) not in TEXTS:
        st.session_state[LANG_KEY] = DEFAULT_LANGUAGE
    return st.session_state[LANG_KEY]


def has_text(key: str) -> bool:
    return key in _TABLE


def t(key: str, lang: str | None = None, **values: Any) -> str:
    """The text of ``key`` in ``lang`` (default: the session's), with ``values`` filled in.

    A missing key is a bug: it raises ``KeyError`` so tests catch it at once.
    """
    text = TEXTS[lang or current_language()][key]
    return string.Formatter().vformat(text, (), _Keep(values)) if values else text


def placeholders(text: str) -> set[str]:
    """The ``{fields}`` of a text."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def pick_language(text: str, lang: str | None = None) -> str:
    """The paragraphs of a bilingual text (Russian paragraphs, then English ones, as the project
    writes experiment and model descriptions) in ``lang``; the whole text when it has none in it."""
    lang = lang or current_language()
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text or "") if p.strip()]
    russian = [p for p in paragraphs if _CYRILLIC.search(p)]
    other = [p for p in paragraphs if not _CYRILLIC.search(p)]
    chosen = russian if lang == "ru" else other
    return "\n\n".join(chosen) if chosen else (text or "").strip()


def in_language(text: str, lang: str | None = None) -> bool:
    """Is ``text`` written in ``lang``? (Russian: has Cyrillic letters; English: has none.)"""
    has_cyrillic = bool(_CYRILLIC.search(text or ""))
    return has_cyrillic if (lang or current_language()) == "ru" else not has_cyrillic


def table() -> Mapping[str, tuple[str, str]]:
    """The raw table (key -> (Russian, English)), for tests and tooling."""
    return dict(_TABLE)
